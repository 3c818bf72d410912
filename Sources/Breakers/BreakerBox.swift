//===----------------------------------------------------------------------===//
// meshsim — Breakers
//===----------------------------------------------------------------------===//

public import SimCore

// A box holds one policy state machine of several kinds without existentials. A payload is taken out, the box set
// to `.empty`, the payload mutated and put back: storage inside the payload (window buckets, logs) stays uniquely
// referenced and is never copied.

/// Where an attempt stands in an Envoy breaker's connection pool.
public enum PoolState: UInt8, Sendable {
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
public enum BreakerBox {
    case empty
    case envoy(EnvoyCircuitBreakerStateMachine)
    case resilience4j(Resilience4jCircuitBreakerStateMachine)
    case hystrix(HystrixCircuitBreakerStateMachine)

    /// The breaker's state for a metrics view: resilience4j's and Hystrix's own (as last updated by a call);
    /// Envoy's thresholds count as open while any resource is at its limit (Envoy's `cx_open`, `rq_pending_open`,
    /// `rq_open`, `rq_retry_open` gauges), else closed; `nil` without a breaker.
    public var state: BreakerState? {
        switch self {
        case .empty: return nil
        case .envoy(let b): return EnvoyCircuitBreakerResource.allCases.contains { b.isOpen($0) } ? .open : .closed
        case .resilience4j(let b): return b.state
        case .hystrix(let b): return b.state
        }
    }

    /// Asks to send an attempt (a retry counts against Envoy's `max_retries` too); `permitted` false rejects it,
    /// and `opened` tells that asking tripped the breaker (Hystrix trips when a request asks).
    public mutating func acquire(isRetry: Bool, at now: SimInstant) -> (permitted: Bool, opened: Bool) {
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
    public mutating func connect() -> (pool: PoolState, permitted: Bool) {
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
    public var hasFreeConnection: Bool {
        guard case .envoy(let b) = self else { return false }
        return b.active(.connections) < b.thresholds(for: .default).maxConnections
    }

    /// Envoy: a pending attempt leaves the queue for a free connection; false when `max_requests` overflows then.
    public mutating func promotePending() -> Bool {
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
    public mutating func cancel(isRetry: Bool, pool: PoolState, at now: SimInstant) {
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
    public mutating func finish(
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
