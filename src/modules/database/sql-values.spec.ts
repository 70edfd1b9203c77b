import { rowValues } from './sql-values';

describe('rowValues', () => {
  it('lists every row’s values in row order, as flatMap would', () => {
    const rows = [
      { id: 1, at: new Date(0), note: null },
      { id: 2, at: new Date(1), note: 'x' },
    ];
    const pick = (row: (typeof rows)[number]) => [row.id, row.at, row.note];

    expect(rowValues(rows, pick)).toEqual([1, new Date(0), null, 2, new Date(1), 'x']);
    expect(rowValues(rows, pick)).toEqual(rows.flatMap(pick));
    expect(rowValues([], pick)).toEqual([]);
  });
});
