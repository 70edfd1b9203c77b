/** Each test file drops its own database and Redis keys; nothing is shared to clean here. */
export default function globalTeardown(): void {}
