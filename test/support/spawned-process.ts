import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const MAIN = join(__dirname, '..', '..', 'dist', 'src', 'main.js');

/** A role of the application running as a real child process, as in production. */
export interface SpawnedRole extends SpawnedScript {
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A node script running as a child process, with everything it prints kept. */
export interface SpawnedScript {
  child: ChildProcess;
  output: () => string;
}

/** @param nodeArgs - options for node itself, such as `--cpu-prof` (refused in NODE_OPTIONS) */
export function spawnScript(
  script: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
): SpawnedScript {
  const child = spawn(process.execPath, [...nodeArgs, script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));

  return { child, output: () => output };
}

/** Starts the built application with the given environment (its roles come from ROLES). */
export function spawnRole(env: Record<string, string>, nodeArgs: string[] = []): SpawnedRole {
  if (!existsSync(MAIN)) {
    throw new Error(`${MAIN} is missing: run "npm run build" first (npm test does it in pretest)`);
  }

  const { child, output } = spawnScript(MAIN, env, nodeArgs);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );

  return { child, output, exited };
}

/** Stops a child that a test left running, so no process outlives its test. */
export async function stopRole(role: SpawnedRole | undefined): Promise<void> {
  if (!role || role.child.exitCode !== null || role.child.signalCode !== null) {
    return;
  }

  role.child.kill('SIGKILL');
  await role.exited;
}
