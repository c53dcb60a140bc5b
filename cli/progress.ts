/** Renders one progress line: a bar of rows scored of the total, and the rate. */
export function progressLine(done: number, total: number, elapsedMs: number, width = 30): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(fraction * width);
  const rate = elapsedMs > 0 ? Math.round((done * 1000) / elapsedMs) : 0;
  const pct = `${Math.floor(fraction * 100)}%`.padStart(4);
  const counts = total > 0 ? `${done}/${total} rows` : `${done} rows`;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct} ${counts} ${rate} rows/s`;
}
