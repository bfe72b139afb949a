// The wire shapes of ringcast's /ws protocol (docs/protocol.md), as the server sends and
// accepts them. Nothing here does anything; the client reads frames into these types.

/** A channel position: offsets count within an epoch (a restarted server starts a new one). */
export interface Position {
    epoch: string;
    offset: number;
}

/**
 * One message as every subscriber receives it (docs/protocol.md "Server → client"). `data`
 * is whatever the publisher sent; `E` names the event and `T` the data's type.
 */
export interface Envelope<T = unknown, E extends string = string> {
    id: string;
    event: E;
    channel: string;
    data: T;
    priority: number;
    /** Milliseconds since the Unix epoch when the channel's home shard ordered it. */
    timestamp: number;
    /** The publishing user; null for backend publishes without one. */
    userId: string | null;
    /** One more than the previous message of the channel, within its epoch. */
    offset: number;
}

/**
 * A map from event names to their data types, e.g.
 * `{ 'test:progress': { percent: number }; 'test:done': { passed: boolean } }`.
 */
export type EventMap = Record<string, unknown>;

/**
 * The messages of a channel whose events are `M`: a union discriminated by `event`, so a
 * `switch (message.event)` narrows `data`.
 */
export type ChannelMessage<M extends EventMap> = {
    [K in keyof M & string]: Envelope<M[K], K>;
}[keyof M & string];

export interface ErrorBody {
    code: number;
    message: string;
}

/** `{"op":"reply",…}`: the answer to the command with the same `id` (null: none of ours). */
export interface ReplyFrame {
    op: 'reply';
    id: number | null;
    ok: boolean;
    error?: ErrorBody;
    [field: string]: unknown;
}

export interface NoticeFrame {
    op: 'notice';
    type: 'unsubscribed';
    channel: string;
    reason: string;
}

export interface PresenceEvent {
    op: 'presence';
    type: 'join' | 'leave';
    channel: string;
    userId: string;
}

/** What a text frame from the server can be. */
export type ServerFrame =
    | { kind: 'message'; message: Envelope }
    | { kind: 'reply'; reply: ReplyFrame }
    | { kind: 'notice'; notice: NoticeFrame }
    | { kind: 'presence'; event: PresenceEvent }
    | { kind: 'unknown'; text: string };

/**
 * Sorts one text frame. Never throws: a frame this version does not understand (a newer
 * server's notice type, malformed JSON) is `unknown`, for the client to report and skip.
 */
export function parseFrame(text: string): ServerFrame {
    let value: unknown;
    try {
        value = JSON.parse(text);
    } catch {
        return { kind: 'unknown', text };
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        return { kind: 'unknown', text };
    }
    const frame = value as Record<string, unknown>;
    if (!('op' in frame)) {
        return typeof frame.channel === 'string' && typeof frame.offset === 'number'
            ? { kind: 'message', message: frame as unknown as Envelope }
            : { kind: 'unknown', text };
    }
    switch (frame.op) {
    case 'reply':
        return { kind: 'reply', reply: frame as unknown as ReplyFrame };
    case 'notice':
        return frame.type === 'unsubscribed' && typeof frame.channel === 'string'
            ? { kind: 'notice', notice: frame as unknown as NoticeFrame }
            : { kind: 'unknown', text };
    case 'presence':
        return (frame.type === 'join' || frame.type === 'leave') &&
               typeof frame.channel === 'string'
            ? { kind: 'presence', event: frame as unknown as PresenceEvent }
            : { kind: 'unknown', text };
    default:
        return { kind: 'unknown', text };
    }
}

/** The answer to `{"op":"presence"}` (docs/protocol.md "Presence"). */
export interface PresenceReply {
    channel: string;
    users: number;
    connections: number;
    anonymous: number;
    /** Absent past the server's `--presence-max-members`, where `listed` is false. */
    members?: { userId: string; connections: number }[];
    listed?: boolean;
}

/** The namespace of a channel: the part before the first `:` (none: the empty string). */
export function namespaceOf(channel: string): string {
    const colon = channel.indexOf(':');
    return colon < 0 ? '' : channel.slice(0, colon);
}
