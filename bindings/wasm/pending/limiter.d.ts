
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
  readonly window: number;
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
  check(key: string, cost?: number): Promise<Decision>;
  refund(key: string, amount?: number): Promise<Decision>;
  reward(key: string, amount?: number): Promise<Decision>;
  penalty(key: string, amount?: number): Promise<Decision>;
  block(key: string, durationMs: number): Promise<Decision>;
  reset(key: string): Promise<void>;
}
