'use strict';
// What the Node benches share: `concurrency` calls in flight, timed.

/**
 * ops/s and Node CPU µs per op of `total` calls of `fn(i)`, `concurrency`
 * of them in flight.
 */
async function measure(fn, total, concurrency) {
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      await fn(i);
    }
  };
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return { ops: total / seconds, cpuUs: (used.user + used.system) / total };
}

module.exports = { measure };
