// Reconnect delays: exponential backoff with full jitter. The n-th consecutive failed
// attempt waits a uniformly random time in [0, min(maxMs, initialMs · 2^n)), so clients
// dropped together (a server drain, a restart) do not come back together.

export interface BackoffOptions {
    /** The cap of the first delay. Default 500 ms. */
    initialMs?: number;
    /** The cap of every delay. Default 30,000 ms. */
    maxMs?: number;
    /**
     * A connection open at least this long counts as a success: the next failure starts
     * again from `initialMs`. Default 10,000 ms, so a server that accepts and at once
     * closes (a broken node behind a balancer) still sees the delays grow.
     */
    resetAfterMs?: number;
}

export class Backoff {
    readonly initialMs: number;
    readonly maxMs: number;
    readonly resetAfterMs: number;
    private _failures = 0;

    constructor(options: BackoffOptions = {}) {
        this.initialMs = positive(options.initialMs, 500, 'backoff.initialMs');
        this.maxMs = positive(options.maxMs, 30_000, 'backoff.maxMs');
        this.resetAfterMs = positive(options.resetAfterMs, 10_000, 'backoff.resetAfterMs');
        if (this.maxMs < this.initialMs) {
            throw new RangeError(`backoff.maxMs (${this.maxMs}) is below backoff.initialMs ` +
                                 `(${this.initialMs}); give a cap at least as large`);
        }
    }

    /** The delay before the next attempt; counts one more failure. */
    next(random: () => number = Math.random): number {
        // 2^n overflows nothing below n = 1024; the cap applies long before.
        const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this._failures, 30));
        this._failures += 1;
        return Math.floor(random() * ceiling);
    }

    /** A connection lasted `openMs`: past `resetAfterMs` the delays start over. */
    connectionEnded(openMs: number): void {
        if (openMs >= this.resetAfterMs) {
            this._failures = 0;
        }
    }

    get failures(): number {
        return this._failures;
    }
}

function positive(value: number | undefined, fallback: number, name: string): number {
    if (value === undefined) {
        return fallback;
    }
    if (!Number.isFinite(value) || value <= 0) {
        throw new RangeError(`${name} = ${value}: give a positive number of milliseconds`);
    }
    return value;
}
