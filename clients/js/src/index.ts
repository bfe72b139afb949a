// ringcast-client: the JavaScript SDK for ringcast's /ws protocol (docs/protocol.md).
// README.md in this package is the guide; these are the names it exports.

export { RingcastClient } from './client.js';
export type { ClientEvents, ClientOptions, ClientState, CloseInfo } from './client.js';
export { Subscription } from './subscription.js';
export type { RecoverOption, SubscribeOptions, SubscribeResult,
              SubscriptionState } from './subscription.js';
export { RingcastError, isTransient } from './errors.js';
export type { ClientErrorCode, ErrorCode } from './errors.js';
export type { BackoffOptions } from './backoff.js';
export type { CommandOptions } from './commands.js';
export type { GetToken } from './token.js';
export type { WebSocketConstructor } from './socket.js';
export type { ChannelMessage, Envelope, EventMap, Position, PresenceEvent,
              PresenceReply } from './protocol.js';
