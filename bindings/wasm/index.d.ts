// Type definitions for rampart (Node.js). Hand-written: option objects are
// camelCase, durations are milliseconds, and every async method rejects
// with a RampartError carrying a stable `code`. Arrays are read by index
// (their iterator is never used); an argument whose reading throws (a
// getter, a Proxy trap) is a RAMPART_INVALID_INPUT error.

/// <reference types="node" />

import type { IncomingMessage, ServerResponse } from 'node:http';

/** Bytes to store: a Uint8Array (a Buffer is one) or a string (stored as UTF-8). */
export type Bytes = Uint8Array | string;

/** The stable codes of rampart's errors. */
export type ErrorCode =
  | 'RAMPART_INVALID_KEY'
  | 'RAMPART_INVALID_INPUT'
  | 'RAMPART_CONFIG'
  | 'RAMPART_NOT_FOUND'
  | 'RAMPART_CONFLICT'
  | 'RAMPART_CORRUPT_DATA'
  | 'RAMPART_UNAVAILABLE'
  | 'RAMPART_TIMEOUT'
  | 'RAMPART_UNSUPPORTED'
  | 'RAMPART_BACKEND'
  /** The WebAssembly module panicked (a bug) and refuses further calls. */
  | 'RAMPART_PANIC';

/** Every ErrorCode. */
export declare const ERROR_CODES: readonly ErrorCode[];

/** Details a RampartError is built from. */
export interface RampartErrorDetails {
  temporary?: boolean;
  operation?: string;
  key?: string;
  cause?: unknown;
}

/** The error of every rampart operation. */
export declare class RampartError extends Error {
  constructor(code: ErrorCode, message: string, details?: RampartErrorDetails);
  readonly name: 'RampartError';
  /** What went wrong, stable across versions. */
  readonly code: ErrorCode;
  /** Whether retrying later (or a fallback store) may succeed. */
  readonly temporary: boolean;
  /** The operation it happened in (`get`, `compare_and_swap`, ...), if known. */
  readonly operation?: string;
  /** The key it happened on, if known. */
  readonly key?: string;
}

/** What a store can do beyond the required operations. */
export interface Capabilities {
  /** Runs Redis-compatible Lua: one round trip per atomic operation. */
  readonly scripting: boolean;
  /** Offers publish/subscribe. */
  readonly pubsub: boolean;
  /** Offers a server clock. */
  readonly serverClock: boolean;
  /** Runs `update` in process under its own lock. */
  readonly atomicUpdate: boolean;
}

export interface TtlOptions {
  /** Milliseconds until the value expires (positive, at most 100 years); leave out for none. */
  ttl?: number;
}

/** The outcome of compareAndSwap: on a conflict, the value found instead. */
export type CasResult =
  | { readonly swapped: true }
  | { readonly swapped: false; readonly current: Buffer | null };

export interface ScanOptions {
  /** Where to continue: a previous page's `cursor` (null or absent: the start). */
  cursor?: string | null;
  /** A hint for the page size (1 to 100 000; default 100). */
  count?: number;
}

/** One page of a scan; `cursor` is null when the scan is complete. */
export interface ScanPage {
  readonly keys: string[];
  readonly cursor: string | null;
}

/** What an update callback decides. */
export type Change =
  | { readonly keep: true }
  | { readonly remove: true }
  | { readonly set: Bytes; readonly ttl?: number }
  | { readonly setKeepTtl: Bytes };

/** The outcome of update. */
export interface Updated {
  /** The value after the update (null: absent). */
  readonly value: Buffer | null;
  /** Whether the store was written. */
  readonly changed: boolean;
  /** How many times the callback ran (more than 1 after lost compare-and-swap races). */
  readonly attempts: number;
}

export interface IncrementOptions {
  /** The TTL in milliseconds given to the counter if this call creates it. */
  ttlIfCreated?: number;
}

/** A live subscription. */
export interface Subscription {
  /** Stops the messages and unsubscribes. */
  close(): void;
}

export interface StoreStats {
  readonly keys: number | null;
  readonly memoryBytes: number | null;
  readonly server: string | null;
}

/**
 * A key-value store with expiry and compare-and-swap: the core's
 * MemoryStore, or any StoreAdapter (ioredis, node-redis, your own) through
 * Store.fromAdapter. Keys are non-empty strings of at most 1024 UTF-8 bytes.
 */
export declare class Store {
  protected constructor(inner: never, token: never);
  /** A store over a JavaScript object implementing the store interface. */
  static fromAdapter(adapter: StoreAdapter): Store;
  readonly capabilities: Capabilities;
  /** The value, or null for a missing or expired key. */
  get(key: string): Promise<Buffer | null>;
  /** Stores `value`, replacing any value and TTL. */
  set(key: string, value: Bytes, options?: TtlOptions): Promise<void>;
  /** True if a live value was deleted. */
  delete(key: string): Promise<boolean>;
  /** Milliseconds left: null for a missing key, Infinity for one that does not expire. */
  ttl(key: string): Promise<number | null>;
  /** If `key` holds `expected` (null: missing), replace it with `value` (null: delete). */
  compareAndSwap(key: string, expected: Bytes | null, value: Bytes | null, options?: TtlOptions): Promise<CasResult>;
  /** One page of the keys starting with `prefix` (literal text, no glob). */
  scan(prefix: string, options?: ScanOptions): Promise<ScanPage>;
  /** Every key starting with `prefix`, page by page. */
  keys(prefix: string, options?: Pick<ScanOptions, 'count'>): AsyncGenerator<string, void, undefined>;
  /**
   * Atomic read-modify-write. `change` runs synchronously (perhaps more
   * than once, after a lost race) and must not call rampart.
   */
  update(key: string, change: (current: Buffer | null) => Change): Promise<Updated>;
  /** Stores `value` only if `key` is missing; true if it did. */
  setIfAbsent(key: string, value: Bytes, options?: TtlOptions): Promise<boolean>;
  /** Deletes `key` only if it holds `expected`; true if it did. */
  deleteIfEqual(key: string, expected: Bytes): Promise<boolean>;
  /** Sets a new TTL (none: persistent) only if `key` holds `expected`. */
  expireIfEqual(key: string, expected: Bytes, options?: TtlOptions): Promise<boolean>;
  /** Adds `delta` (a safe integer, default 1) to the decimal counter under `key`. */
  increment(key: string, delta?: number, options?: IncrementOptions): Promise<number>;
  /** The values of `keys` (at most 100 000), in order: null for a missing or expired key. */
  getMany(keys: readonly string[]): Promise<Array<Buffer | null>>;
  /** How many live values were deleted. */
  deleteMany(keys: readonly string[]): Promise<number>;
  /** Sends `message` to the subscribers of `channel` (stores with pub/sub). */
  publish(channel: string, message: Bytes): Promise<void>;
  /**
   * Calls `onMessage` for every message published on `channel` from now
   * on (at most once, in order); resolves once subscribed.
   */
  subscribe(channel: string, onMessage: (message: Buffer) => void): Promise<Subscription>;
  stats(): Promise<StoreStats>;
  /** The store's clock in milliseconds since the epoch (stores with a server clock). */
  serverTime(): Promise<number>;
}

export interface MemoryStoreOptions {
  /** The most entries held before eviction (sampled LRU); default 100 000. */
  maxEntries?: number;
  /** Expiry follows this clock instead of the system's (tests). */
  clock?: ManualClock;
}

/** The core's bounded in-process store. */
export declare class MemoryStore extends Store {
  constructor(options?: MemoryStoreOptions);
}

/** A clock that moves only when told to (tests). */
export declare class ManualClock {
  /** Stopped at `startMs` milliseconds since the epoch (default: now). */
  constructor(startMs?: number);
  advance(ms: number): void;
  set(ms: number): void;
  /** Milliseconds since the epoch. */
  now(): number;
}

/** A Lua script handed to StoreAdapter.eval. */
export interface Script {
  readonly sha1: string;
  readonly source: string;
}

/** A script's reply, as Redis clients return it. */
export type ScriptReply = null | number | bigint | string | Uint8Array | ScriptReply[];

/** What an adapter's compareAndSwap resolves to. */
export type AdapterCasResult =
  | { readonly swapped: true }
  | { readonly swapped: false; readonly current: Uint8Array | string | null };

/**
 * The store interface: implement it to put rampart on any storage. Keys
 * are strings; values arrive as Uint8Arrays; TTLs are whole milliseconds
 * (null: no expiry). Rejections with a RampartError `code` keep it; Node
 * network errors become RAMPART_UNAVAILABLE or RAMPART_TIMEOUT; others
 * RAMPART_BACKEND.
 */
export interface StoreAdapter {
  get(key: string): Promise<Uint8Array | string | null>;
  set(key: string, value: Uint8Array, ttlMs: number | null): Promise<void>;
  delete(key: string): Promise<boolean>;
  /** null: missing; Infinity: no expiry; else milliseconds left. */
  ttl(key: string): Promise<number | null>;
  /** Atomically: if `key` holds `expected` (null: missing), set `value` (null: delete). */
  compareAndSwap(key: string, expected: Uint8Array | null, value: Uint8Array | null, ttlMs: number | null): Promise<AdapterCasResult>;
  /** Keys starting with `prefix` from `cursor` ('' = start); cursor null when done. */
  scan(prefix: string, cursor: string, count: number): Promise<{ keys: string[]; cursor: string | null }>;
  /** Runs a Redis-compatible Lua script (turns on `scripting`). */
  /** Integer arguments come as numbers (exact: below 2^53) or decimal text. */
  eval?(script: Script, keys: string[], args: Array<string | number | Uint8Array>): Promise<ScriptReply>;
  /** Publishes on a channel (with `subscribe`, turns on `pubsub`). */
  publish?(channel: string, message: Uint8Array): Promise<void>;
  /** Calls `onMessage` for each message on `channel` once subscribed; resolves to the function that unsubscribes. */
  subscribe?(channel: string, onMessage: (message: Uint8Array | string) => void): Promise<() => unknown>;
  /** The server's clock in microseconds since the epoch (turns on `serverClock`). */
  time?(): Promise<number>;
  setIfAbsent?(key: string, value: Uint8Array, ttlMs: number | null): Promise<boolean>;
  deleteIfEqual?(key: string, expected: Uint8Array): Promise<boolean>;
  expireIfEqual?(key: string, expected: Uint8Array, ttlMs: number | null): Promise<boolean>;
  /** `delta` is decimal text (an i64); resolve to the new value (a number or decimal text). */
  increment?(key: string, delta: string, ttlMs: number | null): Promise<number | string>;
  getMany?(keys: string[]): Promise<Array<Uint8Array | string | null>>;
  deleteMany?(keys: string[]): Promise<number>;
  stats?(): Promise<{ keys?: number | null; memoryBytes?: number | null; server?: string | null }>;
}

/** The part of an ioredis client the adapter uses (ioredis 4+). */
export interface IoredisClient {
  call(command: string, ...args: Array<string | Buffer | number>): Promise<unknown>;
  callBuffer(command: string, ...args: Array<string | Buffer | number>): Promise<unknown>;
  /** Used instead of callBuffer when present (callBuffer breaks under enableAutoPipelining). */
  evalshaBuffer?(sha1: string, numkeys: string, ...args: Array<string | Buffer>): Promise<unknown>;
  evalBuffer?(script: string, numkeys: string, ...args: Array<string | Buffer>): Promise<unknown>;
  getBuffer?(key: string): Promise<unknown>;
  mgetBuffer?(...keys: string[]): Promise<unknown>;
  /** The connection's socket, corked and uncorked to coalesce writes. */
  readonly stream?: { cork(): void; uncork(): void } | null;
  /** Writes are coalesced only while this is `ready`. */
  readonly status?: string;
}

/** The part of a node-redis client the adapter uses (redis 4+). */
export interface NodeRedisClient {
  sendCommand(args: Array<string | Buffer>, options?: object): Promise<unknown>;
}

/** Options of the ioredis adapter. */
export interface IoredisAdapterOptions {
  /**
   * Send the commands issued during one turn of the event loop in fewer
   * socket writes (up to 8 per write; node-redis does this by itself).
   * Default true.
   */
  coalesceWrites?: boolean;
}

/** A StoreAdapter over your ioredis client (scripts run as EVALSHA, one round trip). */
export declare function ioredisAdapter(client: IoredisClient, options?: IoredisAdapterOptions): StoreAdapter;
/** A StoreAdapter over your connected node-redis client. */
export declare function nodeRedisAdapter(client: NodeRedisClient): StoreAdapter;
/** Store.fromAdapter(ioredisAdapter(client, options)). */
export declare function ioredisStore(client: IoredisClient, options?: IoredisAdapterOptions): Store;
/** Store.fromAdapter(nodeRedisAdapter(client)). */
export declare function nodeRedisStore(client: NodeRedisClient): Store;

/** null while healthy; the RAMPART_PANIC error once a panic shut the module down. */
export declare function fault(): RampartError | null;

// ------------------------------------------------------------ rate limiting

/** Which rate-limit headers to send. */
export type HeaderStyle = 'draft-8' | 'draft-7' | 'draft-6' | 'legacy';

/** One tier of a decision. */
export interface TierStatus {
  readonly limit: number;
  readonly remaining: number;
  /** Milliseconds until the tier is back to its full limit. */
  readonly resetAfter: number;
  /**
   * The tier's window in milliseconds; for a token bucket, the time its
   * burst (`limit`) takes to refill, so `limit` per `window` is its rate.
   */
  readonly window: number;
}

export interface HeaderOptions {
  style?: HeaderStyle;
  /** Draft-8 policy names, one per tier (default: `100-in-1min`). */
  names?: readonly string[];
  /** The client identifier draft-8 hashes into `pk`. */
  partitionKey?: string;
  /** Whether a denial gets Retry-After (default: true). */
  retryAfter?: boolean;
}

/** The figures of a rate-limit decision (durations and times in milliseconds). */
export interface RateLimitDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  readonly resetAfter: number;
  /** When denied, how long until the same request would pass; null when allowed. */
  readonly retryAfter: number | null;
  readonly window: number;
  /** When the decision was made, in milliseconds since the epoch. */
  readonly at: number;
  readonly tiers?: readonly TierStatus[];
  /** Headers rendered by the limiter itself (rampart's decisions have it). */
  headers?(style: HeaderStyle, options?: HeaderOptions): Array<[string, string]>;
}

/** Header options the middleware hands `consume`, so a limiter can render headers with the decision. */
export interface ConsumeHeaderOptions {
  headers: HeaderStyle;
  names?: readonly string[] | undefined;
  partitionKey?: string | undefined;
}

/** What the middleware needs of a limiter. */
export interface ConsumingLimiter<D extends RateLimitDecision = RateLimitDecision> {
  consume(key: string, cost?: number, headerOptions?: ConsumeHeaderOptions): Promise<D>;
  /** Needed for the middleware's `wait` option. */
  consumeWithin?(key: string, maxWaitMs: number, cost?: number): Promise<D>;
  /** Needed for `skipSuccessfulRequests` / `skipFailedRequests` (`at`: the decision's). */
  refund?(key: string, amount?: number, at?: number): Promise<unknown>;
}

/** The headers for a decision, as [name, value] pairs. */
export declare function rateLimitHeaders(decision: RateLimitDecision, options?: HeaderOptions): Array<[string, string]>;

/** A request the default key function can read (`req.ip`, as Express sets it). */
export type RequestWithIp = IncomingMessage & { ip?: string | undefined };

export interface RateLimitOptions<Req extends IncomingMessage = RequestWithIp> {
  limiter: ConsumingLimiter;
  /** The client's key (default: req.ip). */
  key?: (req: Req) => string | Promise<string>;
  /** Units the request costs (default 1). */
  cost?: number | ((req: Req) => number | Promise<number>);
  /** Header format, or false for none (default 'draft-8'); a 429 always gets Retry-After. */
  headers?: HeaderStyle | false;
  /** Draft-8 policy names, one per tier. */
  names?: readonly string[];
  /** Whether draft-8 headers carry the `pk` partition key (default true). */
  partitionKey?: boolean;
  /** Requests to let through uncounted. */
  skip?: (req: Req) => boolean | Promise<boolean>;
  /** The status of a denial (default 429). */
  statusCode?: number;
  /** The body of a denial: text, or an object sent as JSON. */
  message?: string | Readonly<Record<string, unknown>>;
  /** Admit requests when the limiter fails (default false: the error goes to next()). */
  failOpen?: boolean;
  /**
   * Milliseconds a request may wait for room before it is denied (default
   * 0: none); needs a limiter with `consumeWithin` (rampart's RateLimiter).
   * A waiting request holds its connection: keep it short.
   */
  wait?: number;
  /** Refund admitted requests that succeed, so only failures count (needs `refund`; default false). */
  skipSuccessfulRequests?: boolean;
  /** Refund admitted requests that fail, so only successes count (needs `refund`; default false). */
  skipFailedRequests?: boolean;
  /** Whether a request succeeded (default: a status below 400). */
  requestWasSuccessful?: (req: Req, res: ServerResponse) => boolean | Promise<boolean>;
}

/** Express (or node:http) middleware: counts each request; 429 + Retry-After when denied. */
export declare function rateLimit<Req extends IncomingMessage = RequestWithIp>(
  options: RateLimitOptions<Req>,
): (req: Req & { rateLimit?: RateLimitDecision | undefined }, res: ServerResponse, next: (err?: unknown) => void) => Promise<void>;

// ------------------------------------------------------------ RateLimiter

/** How requests are counted. */
export type Algorithm = 'token-bucket' | 'sliding-log' | 'sliding-window' | 'fixed-window';

/** `limit` requests per `window` milliseconds: one tier of a rule. */
export interface Quota {
  limit: number;
  window: number;
  /** The token bucket's size (default: the limit); token bucket only. */
  burst?: number;
}

/** What a decision does when the store fails. */
export type OnStoreError = 'fail' | 'allow' | 'deny' | { readonly insurance: Store };

export interface RateLimiterCommonOptions {
  store: Store;
  /** A namespace for keys (`prefix:key`), so limiters never share a key. */
  prefix?: string;
  /** Decisions follow this clock (tests); default the system's. */
  clock?: ManualClock;
  /** Where a Lua twin reads `now`: the server's TIME (default) or the limiter's clock. */
  scriptTime?: 'server' | 'caller';
  /** How many blocked keys the local block cache remembers (default 10 000; 0: off). */
  blockCache?: number;
  /** Default 'fail' (the error rejects the call). */
  onStoreError?: OnStoreError;
}

/** One tier (`quotas`) or several, and how to count them. */
export type RateLimiterOptions = RateLimiterCommonOptions & {
  /** Default 'sliding-window'. */
  algorithm?: Algorithm;
  /** Block a key this many milliseconds once a request is denied. */
  blockFor?: number;
} & ({ quotas: readonly Quota[] } | { limit: number; window: number; burst?: number });

export interface RateLimiterPresetOptions extends RateLimiterCommonOptions {
  /** Where RATE_LIMIT_* overrides are read (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Where a decision came from. */
export type DecisionSource = 'store' | 'block-cache' | 'fail-open' | 'fail-closed' | 'insurance';

/** One tier of a rampart decision. */
export interface LimiterTierStatus extends TierStatus {
  /** When denied, how long until this tier admits the request (null if it does). */
  readonly retryAfter: number | null;
}

/** The answer of a RateLimiter (milliseconds throughout). */
export declare class Decision implements RateLimitDecision {
  private constructor();
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  readonly resetAfter: number;
  readonly retryAfter: number | null;
  /** The binding tier's window (ms); see TierStatus.window for a token bucket's. */
  readonly window: number;
  /** When the decision was made (ms since the epoch, to the µs): what refund(key, amount, at) takes. */
  readonly at: number;
  /** Until when the key is blocked (ms since the epoch), or null. */
  readonly blockedUntil: number | null;
  readonly source: DecisionSource;
  readonly tiers: readonly LimiterTierStatus[];
  headers(style?: HeaderStyle, options?: HeaderOptions): Array<[string, string]>;
}

/** The core's rate limiter: token bucket, sliding log, sliding window, fixed window. */
export declare class RateLimiter implements ConsumingLimiter<Decision> {
  constructor(options: RateLimiterOptions);
  /** `auth`, `general` or `api`, overridable by RATE_LIMIT_* variables. */
  static preset(name: 'auth' | 'general' | 'api', options: RateLimiterPresetOptions): RateLimiter;
  /** All or nothing across limiters and keys. */
  static consumeAll(entries: ReadonlyArray<readonly [RateLimiter, string, number?]>): Promise<Decision>;
  /** The largest cost one request may have. */
  readonly capacity: number;
  consume(key: string, cost?: number, headerOptions?: ConsumeHeaderOptions): Promise<Decision>;
  /**
   * consume, waiting up to `maxWaitMs` for room instead of denying at
   * once; a denial no wait could lift in time is answered at once.
   */
  consumeWithin(key: string, maxWaitMs: number, cost?: number): Promise<Decision>;
  check(key: string, cost?: number): Promise<Decision>;
  /**
   * Gives units back: the newest, or, given `at` (a consume Decision's
   * `at`), that charge's own (nothing once its window is over).
   */
  refund(key: string, amount?: number, at?: number): Promise<Decision>;
  reward(key: string, amount?: number): Promise<Decision>;
  penalty(key: string, amount?: number): Promise<Decision>;
  block(key: string, durationMs: number): Promise<Decision>;
  reset(key: string): Promise<void>;
}

// ------------------------------------------------------------ Locks

export interface LocksOptions {
  store: Store;
  /** Expiry follows this clock (tests); give the MemoryStore the same one. */
  clock?: ManualClock;
  /** Lock keys are `<prefix>:<resource>` (default `lock`). */
  prefix?: string;
  /** The hold of `lock()` in ms (default 30 000). */
  ttl?: number;
  /** Retries of `lock()` and `withLock()` (default 10). */
  retryCount?: number;
  /** The steady delay between attempts, ms (default 200; backoff starts at 1/16 of it). */
  retryDelay?: number;
  /** Up to this much random extra per attempt, ms (default 200). */
  retryJitter?: number;
  /** How long a lock's state (its fencing sequence) outlives the hold, ms; null: forever (default 600 000). */
  fenceRetention?: number | null;
  /** How often withLock's watchdog extends the lock, ms (default and maximum: ttl / 3). */
  watchdogInterval?: number;
  /** Where a Lua twin reads `now`: the server's TIME (default) or the caller's clock. */
  scriptTime?: 'server' | 'caller';
}

/** A held lock. */
export declare class Lock {
  private constructor();
  readonly resource: string;
  /** The fencing token: pass it with every write to the protected resource. */
  readonly fence: number;
  /** The hold's secret token (hex). */
  readonly token: string;
  /** When the hold ends unless extended (ms since the epoch). */
  readonly expiresAt: number;
  /** Makes the hold end `ttl` ms from now; false if the lock is no longer ours. */
  extend(ttl: number): Promise<boolean>;
  /** Releases the lock; false if it had expired. */
  release(): Promise<boolean>;
}

/** What a withLock task is given. */
export interface LockHandle {
  readonly fence: number;
  readonly resource: string;
  /** Whether the watchdog found the lock lost: stop writing when it is. */
  isLost(): boolean;
}

/** Token-checked, fenced, auto-expiring distributed locks. */
export declare class Locks {
  constructor(options: LocksOptions);
  tryAcquire(resource: string, options: { ttl: number }): Promise<Lock | null>;
  acquire(resource: string, options: { ttl: number; wait?: number }): Promise<Lock | null>;
  lock(resource: string): Promise<Lock | null>;
  release(resource: string, token: string): Promise<boolean>;
  extend(resource: string, token: string, options: { ttl: number }): Promise<boolean>;
  isLocked(resource: string): Promise<boolean>;
  info(resource: string): Promise<{ readonly fence: number; readonly remaining: number | null }>;
  withLock<T>(resource: string, options: { ttl: number }, task: (lock: LockHandle) => T | Promise<T>): Promise<T>;
}

// ------------------------------------------------------------ Sessions

/** Any value JSON can hold (session data is stored as JSON; say its type with the type parameter). */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

export interface SessionsOptions {
  store: Store;
  /** Expiry follows this clock (tests); give the MemoryStore the same one. */
  clock?: ManualClock;
  /** The prefix of every session key (default `session`). */
  namespace?: string;
  /** Rolling expiry: a session unused this long dies, ms (default 7 days). */
  idleTimeout?: number;
  /** Absolute cap from creation, ms (default 30 days). */
  maxLifetime?: number;
  /** The user's oldest sessions beyond this end at login. */
  maxSessionsPerUser?: number;
  /** Renew the rolling expiry at most this often, ms (default 0: every get). */
  touchInterval?: number;
  /** Where a Lua twin reads `now`: the server's TIME (default) or the caller's clock. */
  scriptTime?: 'server' | 'caller';
}

export interface SessionMeta {
  readonly ip: string | null;
  readonly userAgent: string | null;
}

/** A live session (times in ms since the epoch). */
export interface Session<T = JsonValue> {
  /** The public handle (safe to show; the id is the secret). */
  readonly handle: string;
  readonly userId: string;
  readonly data: T;
  readonly meta: SessionMeta;
  readonly created: number;
  readonly lastSeen: number;
  readonly expires: number;
  readonly expiresAtMost: number;
}

/** One of a user's sessions, as list() returns it. */
export type SessionInfo = Omit<Session, 'userId' | 'data'>;

/** A session just created. */
export interface NewSession {
  /** The id to give the client (a secret; the store keeps only its hash). */
  readonly id: string;
  readonly handle: string;
  readonly expires: number;
  readonly generation: number;
}

export interface CreateSessionOptions {
  ip?: string;
  userAgent?: string;
  /** Create only if the user's sessions were not revoked since this generation. */
  generation?: number;
}

/** Server-side sessions with a per-user index, rotation and revocation. */
export declare class Sessions {
  constructor(options: SessionsOptions);
  /** `data` must survive JSON.stringify (it is stored as JSON). */
  create<T>(userId: string, data: T, options?: CreateSessionOptions): Promise<NewSession>;
  /** `T`: the type the data was created with (it comes back through JSON.parse). */
  get<T = JsonValue>(id: string): Promise<Session<T> | null>;
  update<T = JsonValue>(id: string, change: (data: T) => T): Promise<Session<T> | null>;
  destroy(id: string): Promise<boolean>;
  rotate(id: string): Promise<string | null>;
  destroyAll(userId: string): Promise<number>;
  destroyOthers(userId: string, keepId: string): Promise<number>;
  destroyHandle(userId: string, handle: string): Promise<boolean>;
  list(userId: string): Promise<SessionInfo[]>;
  count(userId: string): Promise<number>;
  generation(userId: string): Promise<number>;
}

export interface RefreshTokensOptions {
  store: Store;
  clock?: ManualClock;
  /** The prefix of every refresh-token key (default `refresh`). */
  namespace?: string;
  /** A token unused this long dies, ms (default 30 days). */
  idleTimeout?: number;
  /** No family outlives this from its login, ms (default 90 days). */
  maxLifetime?: number;
  /** Issuing one more family revokes the user's oldest. */
  maxFamiliesPerUser?: number;
  scriptTime?: 'server' | 'caller';
}

/** What presenting a refresh token did. */
export type RefreshOutcome =
  | { readonly status: 'rotated'; readonly token: string; readonly userId: string; readonly expires: number; readonly generation: number }
  /** A spent token came back: the whole family is revoked now. */
  | { readonly status: 'reuse'; readonly userId: string }
  | { readonly status: 'revoked' }
  | { readonly status: 'unknown' };

/** Rotating refresh-token families with reuse detection. */
export declare class RefreshTokens {
  constructor(options: RefreshTokensOptions);
  issue(userId: string): Promise<{ readonly token: string; readonly family: string; readonly expires: number }>;
  rotate(token: string): Promise<RefreshOutcome>;
  revoke(token: string): Promise<boolean>;
  revokeAll(userId: string): Promise<number>;
  count(userId: string): Promise<number>;
}

/** Revoked access tokens (a JWT's jti), remembered until they expire. */
export declare class Denylist {
  constructor(options: { store: Store; clock?: ManualClock; namespace?: string });
  /** Denies `tokenId` until `expiresAt` (ms since the epoch); false if it has expired already. */
  deny(tokenId: string, expiresAt: number): Promise<boolean>;
  isDenied(tokenId: string): Promise<boolean>;
}

// ------------------------------------------------------------ Cache

export interface CacheOptions {
  store: Store;
  /** Expiry follows this clock (tests); give the MemoryStore the same one. */
  clock?: ManualClock;
  /** The prefix of every cache key (default `cache`). */
  namespace?: string;
  /** How long an entry stays fresh when set() names no ttl, ms (default 5 minutes). */
  defaultTtl?: number;
  /** How long past its TTL getOrSet may serve an entry while one loader refreshes it, ms. */
  staleWhileRevalidate?: number;
}

export interface CacheEntryOptions {
  /** How long the entry stays fresh, ms (default: the cache's defaultTtl). */
  ttl?: number;
  /** Tags to invalidate the entry by (invalidateTag). */
  tags?: readonly string[];
}

/** A cache's counters since it was made. */
export interface CacheStats {
  readonly hits: number;
  readonly misses: number;
  /** hits / (hits + misses); null before any read. */
  readonly hitRate: number | null;
  readonly sets: number;
  readonly deletes: number;
  readonly errors: number;
  readonly loaderCalls: number;
  readonly loaderErrors: number;
  /** Misses that shared another caller's loader call. */
  readonly coalesced: number;
  readonly staleServed: number;
  readonly refreshes: number;
  readonly tagInvalidations: number;
  readonly corrupt: number;
}

/** A cache of JSON values with TTLs, tags, prefix invalidation and coalesced loads. */
export declare class Cache {
  constructor(options: CacheOptions);
  /** `T`: the type the value was stored with (it comes back through JSON.parse). */
  get<T = JsonValue>(key: string): Promise<T | null>;
  /** `value` must survive JSON.stringify (it is stored as JSON). */
  set<T>(key: string, value: T, options?: CacheEntryOptions): Promise<void>;
  /**
   * The value under `key`, or on a miss what `loader` resolves to, stored.
   * Concurrent misses of one key share a single loader call.
   */
  getOrSet<T>(key: string, loader: () => T | PromiseLike<T>, options?: CacheEntryOptions): Promise<T>;
  delete(key: string): Promise<boolean>;
  invalidateTag(tag: string): Promise<void>;
  /** Resolves to how many entries were deleted. */
  invalidatePrefix(prefix: string): Promise<number>;
  stats(): CacheStats;
}
