// Mirror of protocol/codes.hpp (tests/js/codes.test.mjs parses the header and checks every entry):
// the same numbers under camelCase names, and the same human-readable names as code_name().
//
// 1000-1011: WebSocket close codes; 4000-4099: protocol errors and server decisions (on the wire);
// 100-199: client-side reasons for a state transition (never on the wire).
export const Code = Object.freeze({
  ok: 0,
  normalClosure: 1000,
  goingAway: 1001,
  messageTooBig: 1009,
  badFrame: 4000,
  unknownCommand: 4001,
  badChannel: 4002,
  permissionDenied: 4003,
  unauthorized: 4004,
  tokenExpired: 4005,
  tooManySubscriptions: 4006,
  messageTooLarge: 4007,
  slowConsumer: 4008,
  shuttingDown: 4009,
  disconnectedByServer: 4010,
  rateLimited: 4011,
  notSubscribed: 4012,
  alreadySubscribed: 4013,
  badResumeToken: 4014,
  tooManyConnections: 4015,
  timeout: 4016,
  notConnected: 4017,
  internalError: 4018,
  tooManyRequestsInFlight: 4019,
  tooManyChannels: 4020,
  presenceFull: 4021,
  storageUnavailable: 4022,
  idempotencyConflict: 4023,
  outcomeUnknown: 4024,
  connectCalled: 100,
  transportOpened: 101,
  transportClosed: 102,
  transportFailed: 103,
  heartbeatTimeout: 104,
  closedByClient: 105,
  serverDisconnect: 106,
  reconnectTimer: 107,
  networkCheck: 108,
  noTransport: 109,
  handshakeTimeout: 110,
  sseBuffered: 111,
});

// "badChannel" -> "bad channel", which is exactly code_name() in protocol/codes.cpp.
const names = new Map(
  Object.entries(Code).map(([k, v]) => [v, k.replace(/[A-Z]/g, (c) => ' ' + c.toLowerCase())]),
);

export function codeName(code) {
  return names.get(code) ?? 'unknown code';
}
