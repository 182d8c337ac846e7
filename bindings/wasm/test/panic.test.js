'use strict';
// A panic in the WebAssembly module (a bug: every input is validated, so
// tests force one) must not end the Node process: the call rejects with
// RAMPART_PANIC, every pending promise too, and the poisoned instance
// refuses later calls. Each scenario runs in a child process with Node's
// default unhandled-rejection policy (throw), so any stray rejection or
// uncaught trap would fail it.

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { it } = require('node:test');

const root = path.join(__dirname, '..');

function scenario(body) {
  const script = `
    const rampart = require(${JSON.stringify(root)});
    const runtime = require(${JSON.stringify(path.join(root, 'lib/runtime'))});
    const out = {};
    const codeOf = (p) => p.then(() => 'resolved', (e) => e.code);
    (async () => { ${body} })().then(
      () => console.log(JSON.stringify(out)),
      (e) => { console.error(e); process.exit(3); },
    );`;
  const stdout = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(stdout.trim().split('\n').pop());
}

it('a panic during a call rejects it and every pending call, and poisons the instance', () => {
  const out = scenario(`
    let release;
    const slow = rampart.Store.fromAdapter({
      get: () => new Promise((resolve) => { release = resolve; }),
      set() {}, delete() {}, ttl() {}, compareAndSwap() {}, scan() {},
    });
    const pending = codeOf(slow.get('k'));
    const store = new rampart.MemoryStore();
    await store.set('k', 'v');
    const panicked = await runtime.run(() => runtime.wasm.panicForTesting(false)).catch((e) => e);
    out.code = panicked.code;
    out.message = panicked.message;
    out.pending = await pending;
    out.after = await codeOf(store.get('k'));
    out.fault = rampart.fault()?.code;
    // The adapter's promise settling later must not crash the process.
    release(null);
    await new Promise((r) => setTimeout(r, 20));
    out.alive = true;
  `);
  assert.equal(out.code, 'RAMPART_PANIC');
  assert.match(out.message, /deliberate panic \(test\)/);
  assert.equal(out.pending, 'RAMPART_PANIC');
  assert.equal(out.after, 'RAMPART_PANIC');
  assert.equal(out.fault, 'RAMPART_PANIC');
  assert.equal(out.alive, true);
});

it('a panic inside the executor, after an await, rejects the promise instead of ending Node', () => {
  const out = scenario(`
    const p = runtime.run(() => runtime.wasm.panicForTesting(true));
    out.code = await codeOf(p);
    out.fault = rampart.fault()?.message ?? null;
    out.later = await codeOf(new Promise((resolve, reject) => {
      try { new rampart.MemoryStore(); resolve(); } catch (e) { reject(e); }
    }));
  `);
  assert.equal(out.code, 'RAMPART_PANIC');
  assert.match(out.fault, /deliberate panic after an await/);
  assert.equal(out.later, 'RAMPART_PANIC');
});

it('a panic in a background task of the core (rt::spawn, as the cache refresh runs) poisons the instance instead of ending Node', () => {
  const out = scenario(`
    const store = new rampart.MemoryStore();
    await store.set('k', 'v');
    runtime.sync(() => runtime.wasm.panicInBackgroundForTesting());
    out.before = rampart.fault();
    await new Promise((r) => setTimeout(r, 50));
    out.fault = rampart.fault()?.code ?? null;
    out.message = rampart.fault()?.message ?? null;
    out.after = await codeOf(store.get('k'));
    out.alive = true;
  `);
  assert.equal(out.before, null);
  assert.equal(out.fault, 'RAMPART_PANIC');
  assert.match(out.message, /deliberate panic in a background task/);
  assert.equal(out.after, 'RAMPART_PANIC');
  assert.equal(out.alive, true);
});

it('after a panic, a limiter that decides synchronously (MemoryStore) rejects with RAMPART_PANIC instead of calling the module', () => {
  const out = scenario(`
    const limiter = new rampart.RateLimiter({ store: new rampart.MemoryStore(), limit: 5, window: 60_000 });
    out.before = (await limiter.consume('k')).allowed;
    await runtime.run(() => runtime.wasm.panicForTesting(false)).catch(() => {});
    const p = limiter.consume('k');
    out.promise = p instanceof Promise;
    out.after = await codeOf(p);
    out.ascii = await codeOf(limiter.consume('é'));
    out.alive = true;
  `);
  assert.equal(out.before, true);
  assert.equal(out.promise, true);
  assert.equal(out.after, 'RAMPART_PANIC');
  assert.equal(out.ascii, 'RAMPART_PANIC');
  assert.equal(out.alive, true);
});
