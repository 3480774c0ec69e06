/** The benches of project issue 12, in the order of its items. */
export interface BenchEntry {
  bench: string;
  item: number;
  title: string;
}

export const CATALOG: readonly BenchEntry[] = [
  { bench: 'pipeline', item: 1, title: 'Pipeline efficiency' },
  { bench: 'tracker', item: 2, title: 'Tracker interval' },
  { bench: 'latency', item: 3, title: 'Frame-to-alert latency' },
  { bench: 'quantize', item: 4, title: 'Precision: FP32 vs FP16 vs INT8' },
  { bench: 'fleet-load', item: 5, title: 'Fleet load' },
  { bench: 'ota', item: 6, title: 'OTA fan-out' },
  { bench: 'footprint', item: 7, title: 'Footprint' },
];
