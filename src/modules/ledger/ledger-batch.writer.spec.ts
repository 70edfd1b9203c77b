import { supportsTableValueConstructor } from './ledger-batch.writer';

describe('supportsTableValueConstructor', () => {
  it.each([
    ['10.11.19-MariaDB-0+deb12u1', true],
    ['11.4.2-MariaDB', true],
    ['10.3.0-MariaDB', true],
    ['10.2.44-MariaDB', false],
    ['8.0.36', false],
    ['8.4.0-MySQL Community Server', false],
    ['', false],
  ])('%j → %s', (version, expected) => {
    expect(supportsTableValueConstructor(version)).toBe(expected);
  });
});
