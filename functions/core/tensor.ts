/** Packs rows of equal width into one row-major float32 buffer for a `[rows, width]` tensor. */
export function toFloat32(rows: readonly (readonly number[])[], width: number): Float32Array {
  const data = new Float32Array(rows.length * width);
  rows.forEach((row, i) => {
    data.set(row, i * width);
  });
  return data;
}

/** Splits a row-major `[rows, width]` buffer back into plain arrays (JSON-friendly numbers). */
export function fromFlat(data: ArrayLike<number>, rows: number, width: number): number[][] {
  const out: number[][] = new Array(rows);
  for (let i = 0; i < rows; i++) {
    const row = new Array<number>(width);
    for (let j = 0; j < width; j++) row[j] = data[i * width + j] as number;
    out[i] = row;
  }
  return out;
}
