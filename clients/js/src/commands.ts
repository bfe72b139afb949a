// Commands the application issued and the replies that settle them.
//
//   issue() ──open──────────────▶ sent ──reply {id}──▶ resolved / rejected (server code)
//      │                           │
//      │ no connection             ├─ connection closed ─▶ rejected 'disconnected'
//      ▼                           └─ commandTimeoutMs ──▶ rejected 'timeout'
//   queued ──open: flush()──▶ sent
//      ├─ commandTimeoutMs ─▶ rejected 'timeout' (taken out of the queue: never sent)
//      └─ close() ──────────▶ rejected 'closed'
//
// Ids are the integers 1, 2, 3, … of this client, never reused; the server echoes them
// (docs/protocol.md "Client → server"). The timeout runs from issue(), queued or not, so
// a caller waits at most `commandTimeoutMs` for any answer.

import { RingcastError } from './errors.js';
import type { ReplyFrame } from './protocol.js';

export interface CommandOptions {
    /** Default 10,000 ms: the server's ack timeout, a generous bound for one round trip. */
    commandTimeoutMs?: number;
    /**
     * Commands held while there is no connection. Default 100: after a reconnect the
     * queue is sent at once behind the resubscribes (at most `--max-channels`, 50 by
     * default), and the server's default `--command-burst` is 200 commands; a longer
     * burst would be dropped by its rate limit unanswered. Past the bound `issue()`
     * rejects with `queue_full` at once.
     */
    maxQueuedCommands?: number;
}

interface Pending {
    id: number;
    text: string;
    resolve: (reply: ReplyFrame) => void;
    reject: (error: RingcastError) => void;
    timer: ReturnType<typeof setTimeout>;
}

export class CommandTable {
    readonly timeoutMs: number;
    readonly maxQueued: number;
    private _nextId = 1;
    private readonly _queued: Pending[] = [];
    private readonly _sent = new Map<number, Pending>();

    constructor(options: CommandOptions) {
        this.timeoutMs = options.commandTimeoutMs ?? 10_000;
        this.maxQueued = options.maxQueuedCommands ?? 100;
        if (!(this.timeoutMs > 0)) {
            throw new RangeError(`commandTimeoutMs = ${this.timeoutMs}: give a positive number`);
        }
        if (!Number.isInteger(this.maxQueued) || this.maxQueued < 0) {
            throw new RangeError(`maxQueuedCommands = ${this.maxQueued}: give an integer >= 0`);
        }
    }

    /**
     * Sends `{op, ...fields, id}` through `send` when it is given (a connection is open),
     * else queues it (`queue: true`) or rejects with `disconnected` (`queue: false`, for
     * commands that mean nothing on a later connection). Resolves with an ok reply;
     * rejects with the server's code and message for a refusal.
     */
    issue(op: string, fields: Record<string, unknown>, send: ((text: string) => void) | null,
          queue: boolean): Promise<ReplyFrame> {
        const id = this._nextId++;
        const text = JSON.stringify({ op, ...fields, id });
        if (send === null && !queue) {
            return Promise.reject(new RingcastError('disconnected', `${op}: not connected`));
        }
        if (send === null && this._queued.length >= this.maxQueued) {
            return Promise.reject(new RingcastError(
                'queue_full', `${op}: ${this._queued.length} commands already wait for a ` +
                'connection (maxQueuedCommands)'));
        }
        return new Promise<ReplyFrame>((resolve, reject) => {
            const pending: Pending = { id, text, resolve, reject, timer: 0 as never };
            pending.timer = setTimeout(() => this.expire(pending, op), this.timeoutMs);
            if (send === null) {
                this._queued.push(pending);
            } else {
                this._sent.set(id, pending);
                send(text);
            }
        });
    }

    /** A connection opened: sends every queued command, oldest first. */
    flush(send: (text: string) => void): void {
        for (const pending of this._queued.splice(0)) {
            this._sent.set(pending.id, pending);
            send(pending.text);
        }
    }

    /**
     * Settles the command a reply names. Returns false for a reply that names none of
     * ours (`"id":null`: an error about a command sent without an id, or the rate limit).
     */
    settle(reply: ReplyFrame): boolean {
        const pending = typeof reply.id === 'number' ? this._sent.get(reply.id) : undefined;
        if (pending === undefined) {
            return false;
        }
        this._sent.delete(pending.id);
        clearTimeout(pending.timer);
        if (reply.ok) {
            pending.resolve(reply);
        } else {
            pending.reject(new RingcastError(reply.error?.code ?? 0,
                                             reply.error?.message ?? 'refused'));
        }
        return true;
    }

    /** The connection closed: every sent command's outcome is unknown. Queued ones stay. */
    connectionLost(): void {
        for (const pending of this._sent.values()) {
            clearTimeout(pending.timer);
            pending.reject(new RingcastError('disconnected',
                                             'the connection closed before the reply'));
        }
        this._sent.clear();
    }

    /** close(): everything still waiting is rejected; nothing is sent afterwards. */
    rejectAll(error: RingcastError): void {
        this.connectionLost();
        for (const pending of this._queued.splice(0)) {
            clearTimeout(pending.timer);
            pending.reject(error);
        }
    }

    get queued(): number {
        return this._queued.length;
    }

    private expire(pending: Pending, op: string): void {
        const at = this._queued.indexOf(pending);
        if (at >= 0) {
            this._queued.splice(at, 1);
        }
        this._sent.delete(pending.id);
        pending.reject(new RingcastError(
            'timeout', `${op}: no reply within ${this.timeoutMs} ms` +
                       (at >= 0 ? ' (never sent: no connection)' : '')));
    }
}
