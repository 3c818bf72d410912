//===----------------------------------------------------------------------===//
// meshsim — MeshModel
//===----------------------------------------------------------------------===//

import Breakers
import Health
import Limiters
import SimCore

// Boxes that hold one policy state machine of several kinds without existentials. A payload is taken out, the box
// set to `.empty`, the payload mutated and put back: storage inside the payload (window buckets, logs) stays
// uniquely referenced and is never copied.

/// Where an attempt stands in an Envoy breaker's connection pool.
enum PoolState: UInt8 {
    /// No pool (no Envoy breaker on the edge, or not admitted).
    case none
    /// It holds a connection and a request (`max_connections`, `max_requests`).
    case connected
    /// It waits for a connection (`max_pending_requests`).
    case pending
}

/// A circuit breaker on a call edge.
///
/// Envoy's thresholds are applied as an HTTP/1.1 connection pool would meet them (`algorithms.md` §2.2): each
/// attempt in flight holds one connection; with all `max_connections` in use, an attempt waits for one as a pending
/// request, up to `max_pending_requests`; `max_requests` is checked when an attempt gets its connection, and
/// `max_retries` when a retry is asked for. Any overflow fails the attempt at once.
enum BreakerBox {
    case empty
    case envoy(EnvoyCircuitBreakerStateMachine)
    case resilience4j(Resilience4jCircuitBreakerStateMachine)
    case hystrix(HystrixCircuitBreakerStateMachine)

    init?(_ spec: BreakerSpec?) {
        switch spec {
        case .none: return nil
        case .envoy(let thresholds)?:
            self = .envoy(EnvoyCircuitBreakerStateMachine(defaultPriority: thresholds, highPriority: thresholds))
        case .resilience4j(let configuration)?:
            self = .resilience4j(Resilience4jCircuitBreakerStateMachine(configuration: configuration))
        case .hystrix(let configuration)?:
            self = .hystrix(HystrixCircuitBreakerStateMachine(configuration: configuration))
        }
    }

    /// Asks to send an attempt (a retry counts against Envoy's `max_retries` too); `permitted` false rejects it,
    /// and `opened` tells that asking tripped the breaker (Hystrix trips when a request asks).
    mutating func acquire(isRetry: Bool, at now: SimInstant) -> (permitted: Bool, opened: Bool) {
        switch self {
        case .empty: return (true, false)
        case .envoy(var b):
            self = .empty
            defer { self = .envoy(b) }
            return (!isRetry || b.tryAcquire(.retries) == .permitted, false)
        case .resilience4j(var b):
            self = .empty
            defer { self = .resilience4j(b) }
            let before = b.state
            let permitted = b.acquire(at: now) == .permitted
            return (permitted, before != .open && b.state == .open)
        case .hystrix(var b):
            self = .empty
            defer { self = .hystrix(b) }
            let before = b.state
            let permitted = b.acquire(at: now) == .permitted
            return (permitted, before != .open && b.state == .open)
        }
    }

    /// Envoy: an admitted attempt asks the pool for a connection (and a request on it), or else a pending slot.
    /// Other breakers have no pool.
    mutating func connect() -> (pool: PoolState, permitted: Bool) {
        guard case .envoy(var b) = self else { return (.none, true) }
        self = .empty
        defer { self = .envoy(b) }
        // A freed connection goes to the oldest pending attempt: while any waits, newcomers queue behind it.
        if b.active(.pendingRequests) == 0 && b.active(.connections) < b.thresholds(for: .default).maxConnections {
            return Self.attach(&b) ? (.connected, true) : (.none, false)
        }
        return b.tryAcquire(.pendingRequests) == .permitted ? (.pending, true) : (.none, false)
    }

    /// Envoy: whether a pending attempt could get a connection now.
    var hasFreeConnection: Bool {
        guard case .envoy(let b) = self else { return false }
        return b.active(.connections) < b.thresholds(for: .default).maxConnections
    }

    /// Envoy: a pending attempt leaves the queue for a free connection; false when `max_requests` overflows then.
    mutating func promotePending() -> Bool {
        guard case .envoy(var b) = self else { return false }
        self = .empty
        defer { self = .envoy(b) }
        b.release(.pendingRequests)
        return Self.attach(&b)
    }

    /// Takes a connection and a request on it; on a `max_requests` overflow takes neither.
    private static func attach(_ b: inout EnvoyCircuitBreakerStateMachine) -> Bool {
        guard b.tryAcquire(.connections) == .permitted else { return false }
        guard b.tryAcquire(.requests) == .permitted else {
            b.release(.connections)
            return false
        }
        return true
    }

    /// Envoy: returns what an attempt in `pool` holds, and its retry permission.
    private static func release(_ b: inout EnvoyCircuitBreakerStateMachine, pool: PoolState, isRetry: Bool) {
        switch pool {
        case .connected:
            b.release(.requests)
            b.release(.connections)
        case .pending:
            b.release(.pendingRequests)
        case .none:
            break
        }
        if isRetry { b.release(.retries) }
    }

    /// An acquired attempt was cancelled (a hedge lost, or it never got a connection): its permission is returned
    /// without an outcome.
    mutating func cancel(isRetry: Bool, pool: PoolState, at now: SimInstant) {
        switch self {
        case .envoy(var b):
            self = .empty
            Self.release(&b, pool: pool, isRetry: isRetry)
            self = .envoy(b)
        case .resilience4j(var b):
            self = .empty
            b.release(at: now)
            self = .resilience4j(b)
        case .empty, .hystrix:
            break
        }
    }

    /// An acquired attempt ended; returns whether the breaker opened because of it.
    mutating func finish(
        isRetry: Bool,
        pool: PoolState,
        success: Bool,
        duration: SimDuration,
        at now: SimInstant
    ) -> Bool {
        switch self {
        case .empty: return false
        case .envoy(var b):
            self = .empty
            Self.release(&b, pool: pool, isRetry: isRetry)
            self = .envoy(b)
            return false
        case .resilience4j(var b):
            self = .empty
            let transition = b.record(success: success, duration: duration, at: now)
            self = .resilience4j(b)
            return transition?.to == .open
        case .hystrix(var b):
            self = .empty
            let transition = b.record(success: success, duration: duration, at: now)
            self = .hystrix(b)
            return transition?.to == .open
        }
    }
}

/// A rate limiter on a call edge.
enum RateLimiterBox {
    case empty
    case tokenBucket(TokenBucket)
    case gcra(GCRALimiter)
    case fixedWindow(FixedWindowLimiter)
    case slidingLog(SlidingWindowLogLimiter)
    case slidingCounter(SlidingWindowCounterLimiter)

    init?(_ spec: RateLimitSpec?) {
        switch spec {
        case .none: return nil
        case .tokenBucket(let c)?: guard let l = try? TokenBucket(c) else { return nil }; self = .tokenBucket(l)
        case .gcra(let c)?: guard let l = try? GCRALimiter(c) else { return nil }; self = .gcra(l)
        case .fixedWindow(let c)?: guard let l = try? FixedWindowLimiter(c) else { return nil }; self = .fixedWindow(l)
        case .slidingLog(let c)?:
            guard let l = try? SlidingWindowLogLimiter(c) else { return nil }; self = .slidingLog(l)
        case .slidingCounter(let c)?:
            guard let l = try? SlidingWindowCounterLimiter(c) else { return nil }
            self = .slidingCounter(l)
        }
    }

    /// Whether one more call may start at `now`.
    mutating func admit(at now: SimInstant) -> Bool {
        switch self {
        case .empty: return true
        case .tokenBucket(var l):
            self = .empty
            defer { self = .tokenBucket(l) }
            return l.tryAcquire(permits: 1, at: now) == .admit
        case .gcra(var l):
            self = .empty
            defer { self = .gcra(l) }
            return l.tryAcquire(permits: 1, at: now) == .admit
        case .fixedWindow(var l):
            self = .empty
            defer { self = .fixedWindow(l) }
            return l.tryAcquire(permits: 1, at: now) == .admit
        case .slidingLog(var l):
            self = .empty
            defer { self = .slidingLog(l) }
            return l.tryAcquire(permits: 1, at: now) == .admit
        case .slidingCounter(var l):
            self = .empty
            defer { self = .slidingCounter(l) }
            return l.tryAcquire(permits: 1, at: now) == .admit
        }
    }
}

/// An adaptive concurrency limiter on a replica.
enum ConcurrencyLimiterBox {
    case empty
    case aimd(ConcurrencyLimiter<AIMDLimit>)
    case vegas(ConcurrencyLimiter<VegasLimit>)
    case gradient2(ConcurrencyLimiter<Gradient2Limit>)

    init?(_ spec: ConcurrencyLimitSpec?) {
        switch spec {
        case .none: return nil
        case .aimd(let c)?: guard let l = try? AIMDLimit(c) else { return nil }; self = .aimd(ConcurrencyLimiter(l))
        case .vegas(let c)?: guard let l = try? VegasLimit(c) else { return nil }; self = .vegas(ConcurrencyLimiter(l))
        case .gradient2(let c)?:
            guard let l = try? Gradient2Limit(c) else { return nil }
            self = .gradient2(ConcurrencyLimiter(l))
        }
    }

    /// The current limit.
    var limit: Int {
        switch self {
        case .empty: return 0
        case .aimd(let l): return l.limit
        case .vegas(let l): return l.limit
        case .gradient2(let l): return l.limit
        }
    }

    /// A permit for one more request at `now`, or nil when at the limit.
    mutating func acquire(at now: SimInstant) -> ConcurrencyPermit? {
        switch self {
        case .empty: return nil
        case .aimd(var l):
            self = .empty
            defer { self = .aimd(l) }
            return l.acquire(at: now)
        case .vegas(var l):
            self = .empty
            defer { self = .vegas(l) }
            return l.acquire(at: now)
        case .gradient2(var l):
            self = .empty
            defer { self = .gradient2(l) }
            return l.acquire(at: now)
        }
    }

    /// Returns a permit with the request's outcome; the limit learns from it.
    mutating func release(
        _ permit: ConcurrencyPermit,
        at now: SimInstant,
        outcome: ConcurrencyOutcome,
        using rng: inout some RandomNumberGenerator
    ) {
        switch self {
        case .empty: return
        case .aimd(var l):
            self = .empty
            l.release(permit, at: now, outcome: outcome, using: &rng)
            self = .aimd(l)
        case .vegas(var l):
            self = .empty
            l.release(permit, at: now, outcome: outcome, using: &rng)
            self = .vegas(l)
        case .gradient2(var l):
            self = .empty
            l.release(permit, at: now, outcome: outcome, using: &rng)
            self = .gradient2(l)
        }
    }
}
