// Type declarations for the `pushwire` package (docs/client.md describes the API in prose).

export type TransportName = 'websocket' | 'sse' | 'polling';
export type ClientState = 'disconnected' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface Position {
  epoch: string;
  offset: number;
}

export interface ClientOptions {
  /** Connection token (JWT, HS256). Empty or absent: anonymous (or ask getToken, if given). */
  token?: string;
  /**
   * Gives a token: called before connecting when there is none, and whenever the server refuses the
   * one in use (`code` 4004 unauthorized or 4005 token expired; 0 before a first connection). When it
   * throws, rejects, takes longer than requestTimeoutMs or gives the token just refused, the client
   * ends `closed` with the refusal's code (docs/client.md, "Tokens").
   */
  getToken?: (ctx: { code: number }) => string | Promise<string>;
  /** Transports in the order to try them. Default: ['websocket', 'sse', 'polling']. */
  transports?: TransportName[];
  /** Connect as soon as the client is constructed (default true); otherwise call connect(). */
  autoConnect?: boolean;
  /** Backoff: first retry within this (full jitter). Default 500. */
  backoffMinMs?: number;
  /** Backoff ceiling. Default 20000. */
  backoffMaxMs?: number;
  /** A connection up this long resets the backoff. Default 10000. */
  stableAfterMs?: number;
  /** Transport open requested -> `connected` frame. Default 10000. */
  handshakeTimeoutMs?: number;
  /** SSE request -> its first event; past it a buffering proxy is assumed (fallback code 111). Default 4000. */
  sseFirstEventMs?: number;
  /** Silence allowed on top of the server's ping interval (or the poll hold). Default 10000. */
  heartbeatGraceMs?: number;
  /** How long the server holds a long-poll. Default 25000 (the server's default). */
  pollHoldMs?: number;
  /** publish/history/presence/drop reject after this. Default 10000. */
  requestTimeoutMs?: number;
  /** Jitter seed; random by default. */
  seed?: number;
  /**
   * Share one connection with the other tabs of this origin whose clients have the same server URL,
   * auth options and key (a string given here is part of the key), held by a SharedWorker or a
   * leader tab. The API is unchanged (docs/client.md, "One connection per browser"). Default false.
   */
  shared?: boolean | string;
  /** Where to load pushwire_shared.mjs from (with `shared`). Default: next to the bundle. */
  sharedUrl?: string | URL;
  /** The core's .wasm bytes, if you already have them. */
  wasmBinary?: ArrayBuffer | Uint8Array;
  /** Where to load the core's .wasm from. Default: pushwire_core.wasm next to the bundle. */
  wasmUrl?: string | URL;
  /**
   * Where to load the core built as plain JavaScript (wasm2js) from, used only where the page's
   * Content Security Policy refuses to compile wasm. Default: pushwire_core_wasm2js.mjs next to the bundle.
   */
  wasm2jsUrl?: string | URL;
  /** Injectable implementations (tests, non-browser runtimes). */
  WebSocket?: unknown;
  EventSource?: unknown;
  fetch?: typeof fetch;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
  /** Targets of the `online` and `visibilitychange` listeners (default: the page's window/document). */
  window?: { addEventListener(t: string, f: () => void): void; removeEventListener(t: string, f: () => void): void } | null;
  document?: {
    visibilityState?: string;
    addEventListener(t: string, f: () => void): void;
    removeEventListener(t: string, f: () => void): void;
  } | null;
}

export interface StateEvent {
  from: ClientState;
  to: ClientState;
  /** Why (see Code: 100-199 client reasons, 1000+/4000+ server and close codes). */
  code: number;
  /** Reaching 'connected': the transport, and after a fallback its reason too, e.g. 'polling (SSE buffered by a proxy)'. */
  reason: string;
  transport: TransportName | null;
  /** Which build of the core runs (null if it has not loaded). */
  core: CoreKind | null;
  /** When core is 'wasm2js': why wasm was not used (the browser's CSP refusal message). */
  coreReason?: string;
}

/** 'wasm', or 'wasm2js' (the same core as plain JavaScript) where compiling wasm is refused. */
export type CoreKind = 'wasm' | 'wasm2js';

export interface FallbackEvent {
  from: TransportName;
  to: TransportName;
  /** Why `from` failed, e.g. Code.sseBuffered (111) when a proxy held the SSE stream. */
  code: number;
  reason: string;
}

export interface MessageContext {
  channel: string;
  epoch: string;
  offset: number;
}

export interface GapEvent extends MessageContext {
  reason: string;
}

export interface Member {
  user: string;
  client: string;
}

export interface PresenceEvent {
  channel: string;
  member: Member;
  user: string;
  client: string;
}

export interface SubscribedEvent extends MessageContext {
  /**
   * Only when the subscription resumed from a position (`since`, or the client's own resume after a
   * reconnect): true = every missed message follows; false = history no longer covers the gap (a
   * `gap` event follows). Absent on a first subscribe.
   */
  recovered?: boolean;
}

export interface UnsubscribedEvent {
  channel: string;
  code: number;
  reason: string;
}

export interface Publication<T = unknown> {
  channel: string;
  epoch: string;
  offset: number;
  data: T;
}

export interface PublishResult {
  channel: string;
  epoch: string;
  offset: number;
}

export interface SubscriptionHandlers<T = unknown> {
  /** Resume from a known position (e.g. saved by the application). */
  since?: Position;
  onMessage?(data: T, ctx: MessageContext): void;
  /** History could not cover a reconnect gap (or offsets skipped): some messages were missed. */
  onGap?(ev: GapEvent): void;
  onJoin?(ev: PresenceEvent): void;
  onLeave?(ev: PresenceEvent): void;
  onSubscribed?(ev: SubscribedEvent): void;
  onUnsubscribed?(ev: UnsubscribedEvent): void;
  onError?(err: PushwireError): void;
}

export class PushwireError extends Error {
  /** `reason` defaults to codeName(code); the message is "<reason> (<code>)". */
  constructor(code: number, reason?: string);
  readonly name: 'PushwireError';
  /** The server's (or client's) code, see Code. */
  readonly code: number;
  readonly reason: string;
  channel?: string;
}

export class Subscription<T = unknown> {
  readonly client: Client;
  readonly channel: string;
  readonly state: 'subscribing' | 'subscribed' | 'unsubscribed';
  /** The last delivered position. */
  readonly position: Position | null;
  on(event: 'message', fn: (data: T, ctx: MessageContext) => void): () => void;
  on(event: 'gap', fn: (ev: GapEvent) => void): () => void;
  on(event: 'join' | 'leave', fn: (ev: PresenceEvent) => void): () => void;
  on(event: 'subscribed', fn: (ev: SubscribedEvent) => void): () => void;
  on(event: 'unsubscribed', fn: (ev: UnsubscribedEvent) => void): () => void;
  on(event: 'error', fn: (err: PushwireError) => void): () => void;
  off(event: string, fn: (...args: any[]) => void): this;
  publish(data: unknown): Promise<PublishResult>;
  history(options?: { limit?: number }): Promise<Publication<T>[]>;
  presence(): Promise<Member[]>;
  unsubscribe(): void;
}

export class Client {
  constructor(url: string | URL, options?: ClientOptions);
  readonly url: string;
  readonly state: ClientState;
  /** The transport in use or being tried; null while disconnected, reconnecting or closed. */
  readonly transport: TransportName | null;
  /** Which build of the core runs; null until it has loaded. */
  readonly core: CoreKind | null;
  /** The server's id for the current connection (its presence `client`); null unless connected. */
  readonly clientId: string | null;
  on(event: 'state', fn: (ev: StateEvent) => void): () => void;
  on(event: 'fallback', fn: (ev: FallbackEvent) => void): () => void;
  on(event: 'error', fn: (err: PushwireError) => void): () => void;
  off(event: string, fn: (...args: any[]) => void): this;
  /** Resolves when connected; rejects if the client is (or becomes) closed first. */
  ready(): Promise<void>;
  connect(): void;
  /** Closes the connection and releases every timer, socket and listener. connect() may follow. */
  close(): void;
  subscribe<T = unknown>(channel: string, handlers?: SubscriptionHandlers<T>): Subscription<T>;
  getSubscription(channel: string): Subscription | null;
  /** Rejects with a PushwireError whose `code` is the server's if refused. */
  publish(channel: string, data: unknown): Promise<PublishResult>;
  history<T = unknown>(channel: string, options?: { limit?: number }): Promise<Publication<T>[]>;
  presence(channel: string): Promise<Member[]>;
  /** Demo servers only: asks the server to drop this connection; resolves once dropped. */
  drop(): Promise<void>;
  /** The token for the next connection; the current one is not interrupted. */
  setToken(token: string): void;
}

export const Code: Readonly<{
  ok: 0;
  normalClosure: 1000;
  goingAway: 1001;
  messageTooBig: 1009;
  badFrame: 4000;
  unknownCommand: 4001;
  badChannel: 4002;
  permissionDenied: 4003;
  unauthorized: 4004;
  tokenExpired: 4005;
  tooManySubscriptions: 4006;
  messageTooLarge: 4007;
  slowConsumer: 4008;
  shuttingDown: 4009;
  disconnectedByServer: 4010;
  rateLimited: 4011;
  notSubscribed: 4012;
  alreadySubscribed: 4013;
  badResumeToken: 4014;
  tooManyConnections: 4015;
  timeout: 4016;
  notConnected: 4017;
  internalError: 4018;
  tooManyRequestsInFlight: 4019;
  tooManyChannels: 4020;
  presenceFull: 4021;
  storageUnavailable: 4022;
  idempotencyConflict: 4023;
  outcomeUnknown: 4024;
  connectCalled: 100;
  transportOpened: 101;
  transportClosed: 102;
  transportFailed: 103;
  heartbeatTimeout: 104;
  closedByClient: 105;
  serverDisconnect: 106;
  reconnectTimer: 107;
  networkCheck: 108;
  noTransport: 109;
  handshakeTimeout: 110;
  sseBuffered: 111;
}>;

export function codeName(code: number): string;
