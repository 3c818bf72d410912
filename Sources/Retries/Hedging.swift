//===----------------------------------------------------------------------===//
// meshsim — Retries
//===----------------------------------------------------------------------===//

public import SimCore

/// gRPC's hedging policy: send the request again after a delay, without waiting for the first attempt to fail.
///
/// Source: gRFC A6 (`hedgingPolicy` in the service config); grpc-go `service_config.go`. Fields: `maxAttempts`
/// (at least 2, capped by the client at 5, grpc-go's `defaultMaxCallAttempts`), `hedgingDelay` (at least 0) and
/// `nonFatalStatusCodes` (statuses after which hedging goes on; any other status is fatal). The timeline is kept by
/// ``HedgingStateMachine``.
public struct HedgingPolicy: Sendable, Equatable {
    /// The most attempts, the original included, after the client's cap.
    public let maxAttempts: Int
    /// The delay between hedges (`hedgingDelay`); 0 sends all attempts at once.
    public let hedgingDelay: SimDuration
    /// The statuses that do not end the RPC (`nonFatalStatusCodes`).
    public let nonFatalStatusCodes: GRPCStatusCodes

    /// Creates a policy, validating its parameters.
    ///
    /// - Parameters:
    ///   - maxAttempts: `maxAttempts`, at least 2; values above `maxCallAttempts` are capped to it.
    ///   - hedgingDelay: `hedgingDelay`, at least 0.
    ///   - nonFatalStatusCodes: `nonFatalStatusCodes`; empty makes every failure fatal.
    ///   - maxCallAttempts: the client's cap on attempts, default 5; between 1 and 32.
    /// - Throws: ``PolicyParameterError`` naming `max_attempts`, `hedging_delay` or `max_call_attempts`.
    public init(
        maxAttempts: Int,
        hedgingDelay: SimDuration = .zero,
        nonFatalStatusCodes: GRPCStatusCodes = [],
        maxCallAttempts: Int = 5
    ) throws {
        if maxAttempts < 2 {
            throw PolicyParameterError("max_attempts", "must be at least 2, got \(maxAttempts)")
        }
        if !(1...AttemptSet.capacity).contains(maxCallAttempts) {
            throw PolicyParameterError(
                "max_call_attempts",
                "must be between 1 and \(AttemptSet.capacity), got \(maxCallAttempts)"
            )
        }
        if hedgingDelay < .zero {
            throw PolicyParameterError("hedging_delay", "must not be negative, got \(hedgingDelay.nanoseconds)ns")
        }
        self.maxAttempts = min(maxAttempts, maxCallAttempts)
        self.hedgingDelay = hedgingDelay
        self.nonFatalStatusCodes = nonFatalStatusCodes
    }

    /// Whether `status` ends the hedged RPC (it is neither OK nor non-fatal).
    /// - Complexity: O(1).
    public func isFatal(_ status: GRPCStatusCode) -> Bool {
        status != .ok && !nonFatalStatusCodes.contains(status)
    }
}

/// What the server's `grpc-retry-pushback-ms` trailer said about the next attempt.
///
/// Source: gRFC A6 (server pushback): a value of 0 or more means "try again after that many milliseconds"; a
/// negative, unparsable or repeated value means "do not retry" (and counts as a throttling failure).
public enum Pushback: Sendable, Hashable {
    /// No pushback trailer.
    case none
    /// Try again after this delay.
    case retryAfter(SimDuration)
    /// Do not retry or hedge again.
    case stop
}

/// A set of attempt numbers (0 for the original, 1 for the first hedge or retry…), stored as bits.
public struct AttemptSet: Sequence, Sendable, Hashable {
    /// The most attempts a set can hold.
    public static let capacity = 32

    /// One bit per attempt number.
    public private(set) var bits: UInt32

    /// The empty set.
    public init() { bits = 0 }

    /// The set holding `attempts` (numbers outside 0..<``capacity`` are ignored).
    public init(_ attempts: [Int]) {
        bits = 0
        for attempt in attempts { insert(attempt) }
    }

    /// Whether the set is empty.
    public var isEmpty: Bool { bits == 0 }

    /// How many attempts the set holds.
    public var count: Int { bits.nonzeroBitCount }

    /// Whether the set holds `attempt`.
    /// - Complexity: O(1).
    public func contains(_ attempt: Int) -> Bool {
        (0..<Self.capacity).contains(attempt) && bits & (1 << UInt32(attempt)) != 0
    }

    /// Adds `attempt` (ignored outside 0..<``capacity``).
    /// - Complexity: O(1).
    public mutating func insert(_ attempt: Int) {
        if (0..<Self.capacity).contains(attempt) { bits |= 1 << UInt32(attempt) }
    }

    /// Removes `attempt`.
    /// - Complexity: O(1).
    public mutating func remove(_ attempt: Int) {
        if (0..<Self.capacity).contains(attempt) { bits &= ~(1 << UInt32(attempt)) }
    }

    /// Iterates the attempt numbers in increasing order, without allocating.
    public func makeIterator() -> Iterator { Iterator(remaining: bits) }

    /// An iterator over the attempt numbers of a set.
    public struct Iterator: IteratorProtocol, Sendable {
        var remaining: UInt32

        /// The next attempt number, or `nil` at the end.
        public mutating func next() -> Int? {
            guard remaining != 0 else { return nil }
            let attempt = remaining.trailingZeroBitCount
            remaining &= remaining - 1
            return attempt
        }
    }
}

/// What a hedged RPC should do next.
public enum HedgingAction: Sendable, Hashable {
    /// Send attempt `attempt` now (to a backend not used by the other attempts, as A6 asks of the balancer).
    case send(attempt: Int)
    /// Nothing to send now; the next hedge is due at the instant, or none is scheduled (`nil`).
    case wait(until: SimInstant?)
    /// Attempt `winner` succeeded: the RPC is done, and the attempts in `cancel` are to be cancelled.
    case succeeded(winner: Int, cancel: AttemptSet)
    /// The RPC failed (a fatal status, or every attempt failed): the attempts in `cancel` are to be cancelled.
    case failed(cancel: AttemptSet)
}

/// The timeline of one hedged RPC: when to send each hedge, and which attempts to cancel when it ends.
///
/// Source: gRFC A6, "Hedging Policy". The original attempt goes at the start; another attempt every `hedgingDelay`
/// while none has succeeded, up to `maxAttempts`. A non-fatal status sends the next hedge at once, and later hedges
/// follow at `hedgingDelay` from then; pushback of n ms sends the next hedge after n ms instead, and "do not retry"
/// pushback stops hedging (attempts already sent go on). A fatal status cancels every outstanding attempt and ends the
/// RPC; the first OK wins and cancels the rest. There is no retry once every hedge has failed.
///
/// Usage: create it when the RPC starts (attempt 0 counts as sent); whenever the time reaches ``nextHedgeAt``, call
/// ``poll(at:)`` until it stops returning `.send`; report each attempt's end with ``attemptSucceeded(_:at:)`` or
/// ``attemptFailed(_:status:pushback:at:)``. gRPC throttles hedges like retries: if the ``GRPCRetryThrottle`` says no
/// when a hedge is due, call ``stopHedging(at:)`` instead of ``poll(at:)``; for a non-fatal failure, report it to the
/// throttle first and, if the throttle then says no, call ``stopHedging(at:)`` before
/// ``attemptFailed(_:status:pushback:at:)`` (which would otherwise send the next hedge at once). Once finished,
/// every call returns `.wait(until: nil)`. No call allocates.
public struct HedgingStateMachine: Sendable, Equatable {
    /// The policy.
    public let policy: HedgingPolicy
    /// When the RPC started (and attempt 0 was sent).
    public let startedAt: SimInstant
    /// Attempts sent so far, the original included; attempt numbers are 0..<attemptsSent.
    public private(set) var attemptsSent: Int
    /// Attempts sent and not yet ended.
    public private(set) var outstanding: AttemptSet
    /// When the next hedge is due, or `nil` when none will be sent.
    public private(set) var nextHedgeAt: SimInstant?
    /// Whether the RPC has ended (succeeded or failed).
    public private(set) var isFinished: Bool
    /// Whether hedging was stopped for good (by "do not retry" pushback or ``stopHedging(at:)``).
    public private(set) var hedgingStopped = false

    /// Starts the timeline of an RPC whose original attempt (number 0) is sent at `startedAt`.
    public init(policy: HedgingPolicy, startedAt: SimInstant) {
        self.policy = policy
        self.startedAt = startedAt
        attemptsSent = 1
        outstanding = AttemptSet()
        outstanding.insert(0)
        nextHedgeAt = policy.maxAttempts > 1 ? startedAt + policy.hedgingDelay : nil
        isFinished = false
    }

    /// Sends the next hedge if one is due at `now`; otherwise says when the next is due.
    /// - Complexity: O(1).
    public mutating func poll(at now: SimInstant) -> HedgingAction {
        guard !isFinished else { return .wait(until: nil) }
        guard let due = nextHedgeAt, now >= due, attemptsSent < policy.maxAttempts else {
            return .wait(until: nextHedgeAt)
        }
        let attempt = attemptsSent
        attemptsSent += 1
        outstanding.insert(attempt)
        nextHedgeAt = attemptsSent < policy.maxAttempts ? now + policy.hedgingDelay : nil
        return .send(attempt: attempt)
    }

    /// Attempt `attempt` succeeded at `now`: it wins, and every other outstanding attempt is to be cancelled.
    /// - Complexity: O(1).
    public mutating func attemptSucceeded(_ attempt: Int, at now: SimInstant) -> HedgingAction {
        guard !isFinished, outstanding.contains(attempt) else { return poll(at: now) }
        outstanding.remove(attempt)
        return finish(.succeeded(winner: attempt, cancel: outstanding))
    }

    /// Attempt `attempt` ended at `now` with `status` and `pushback`.
    ///
    /// OK counts as success. A fatal status ends the RPC and cancels the outstanding attempts; a non-fatal one
    /// sends the next hedge now (or after the pushback), or ends the RPC when nothing is left to wait for.
    /// - Complexity: O(1).
    public mutating func attemptFailed(
        _ attempt: Int,
        status: GRPCStatusCode,
        pushback: Pushback = .none,
        at now: SimInstant
    ) -> HedgingAction {
        if status == .ok { return attemptSucceeded(attempt, at: now) }
        guard !isFinished, outstanding.contains(attempt) else { return poll(at: now) }
        outstanding.remove(attempt)
        if policy.isFatal(status) { return finish(.failed(cancel: outstanding)) }
        if case .stop = pushback { hedgingStopped = true }
        let more = attemptsSent < policy.maxAttempts && !hedgingStopped
        switch pushback {
        case .retryAfter(let delay): nextHedgeAt = more ? now + max(delay, .zero) : nil
        case .none, .stop: nextHedgeAt = more ? now : nil
        }
        if nextHedgeAt == nil && outstanding.isEmpty { return finish(.failed(cancel: AttemptSet())) }
        return poll(at: now)
    }

    /// Sends no more hedges, for good (for example when retry throttling forbids one); attempts already sent go on.
    /// - Complexity: O(1).
    public mutating func stopHedging(at now: SimInstant) -> HedgingAction {
        guard !isFinished else { return .wait(until: nil) }
        hedgingStopped = true
        nextHedgeAt = nil
        if outstanding.isEmpty { return finish(.failed(cancel: AttemptSet())) }
        return .wait(until: nil)
    }

    /// Marks the RPC ended and returns `action`.
    private mutating func finish(_ action: HedgingAction) -> HedgingAction {
        isFinished = true
        outstanding = AttemptSet()
        nextHedgeAt = nil
        return action
    }
}
