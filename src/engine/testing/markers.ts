/**
 * Start/end markers written by test scripts (`start <noderole> <node> <ns>` /
 * `end <noderole> <node> <ns>`), and checks on them: overlaps per node, peak concurrency.
 */
import fs from 'node:fs';

export interface Interval {
  noderole: string;
  node: string;
  start: number;
  end: number;
}

/** Shell lines that record the run's start and end in `file` (the end via an EXIT trap). */
export function markerScript(file: string, body = ''): string {
  return [
    `echo "start $FW_NODEROLE $FW_NODE $(date +%s%N)" >> ${file}`,
    `trap 'echo "end $FW_NODEROLE $FW_NODE $(date +%s%N)" >> ${file}' EXIT`,
    body,
  ].join('\n');
}

export function readIntervals(file: string): { intervals: Interval[]; unfinished: Array<Omit<Interval, 'end'>> } {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const open = new Map<string, Array<Omit<Interval, 'end'>>>();
  const intervals: Interval[] = [];
  for (const line of text.split('\n')) {
    const [kind, noderole, node, ns] = line.trim().split(/\s+/);
    if (!kind) continue;
    const t = Number(BigInt(ns) / 1000n) / 1000; // ms, fractional
    if (kind === 'start') {
      const list = open.get(noderole) ?? [];
      list.push({ noderole, node, start: t });
      open.set(noderole, list);
    } else if (kind === 'end') {
      const list = open.get(noderole) ?? [];
      const s = list.pop(); // runs of one node-role are sequential: the latest start is the one ending
      if (s) intervals.push({ ...s, end: t });
    }
  }
  return { intervals, unfinished: [...open.values()].flat() };
}

/** Pairs of intervals on the same node that overlap in time. */
export function overlapsPerNode(intervals: Interval[]): Array<[Interval, Interval]> {
  const out: Array<[Interval, Interval]> = [];
  const byNode = new Map<string, Interval[]>();
  for (const i of intervals) byNode.set(i.node, [...(byNode.get(i.node) ?? []), i]);
  for (const list of byNode.values()) {
    list.sort((a, b) => a.start - b.start);
    for (let i = 1; i < list.length; i++) if (list[i].start < list[i - 1].end) out.push([list[i - 1], list[i]]);
  }
  return out;
}

/** Pairs of intervals of the same node-role that overlap (a node-role running twice at once). */
export function overlapsPerNodeRole(intervals: Interval[]): Array<[Interval, Interval]> {
  return overlapsPerNode(intervals.map((i) => ({ ...i, node: i.noderole })));
}

/** The most intervals open at one moment. */
export function peakConcurrency(intervals: Interval[]): number {
  const ev = intervals.flatMap((i) => [
    [i.start, 1],
    [i.end, -1],
  ]) as Array<[number, number]>;
  ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let peak = 0;
  for (const [, d] of ev) {
    cur += d;
    peak = Math.max(peak, cur);
  }
  return peak;
}
