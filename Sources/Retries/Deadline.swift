//===----------------------------------------------------------------------===//
// meshsim — Retries
//===----------------------------------------------------------------------===//

public import SimCore

/// An absolute deadline carried down the call graph: each hop spends from the same budget instead of starting a new
/// timeout.
///
/// Source: gRPC deadline propagation (gRFC A6: "the RPC deadline covers all attempts"; a server's outgoing calls
/// inherit its incoming deadline) and Envoy's route timeout, which covers every retry, with `per_try_timeout`
/// bounding each attempt inside it (Envoy router filter docs). A child call gets `min(per-try timeout, deadline −
/// now)`; a call whose deadline has passed fails fast instead of being sent.
public struct Deadline: Sendable, Hashable, Comparable {
    /// The instant by which the call must be done.
    public var instant: SimInstant

    /// A deadline at `instant`.
    public init(_ instant: SimInstant) { self.instant = instant }

    /// No deadline: later than any instant a run reaches.
    public static let none = Deadline(.distantFuture)

    /// The deadline `timeout` after `now` (a call's own timeout, set where the call enters the mesh).
    public static func after(_ timeout: SimDuration, from now: SimInstant) -> Deadline {
        Deadline(now + timeout)
    }

    /// Whether the deadline has passed at `now` (no time is left).
    /// - Complexity: O(1).
    public func isExpired(at now: SimInstant) -> Bool { now >= instant }

    /// The time left at `now`: `deadline − now`, or zero once expired.
    /// - Complexity: O(1).
    public func remaining(at now: SimInstant) -> SimDuration { max(instant - now, .zero) }

    /// The timeout for a child call (or one attempt) started at `now`: `min(perTryTimeout, deadline − now)`, or
    /// `nil` when the deadline has passed and the call should fail fast.
    ///
    /// - Parameter perTryTimeout: the call's own per-try timeout, or `nil` for none.
    /// - Complexity: O(1).
    public func budget(perTryTimeout: SimDuration?, at now: SimInstant) -> SimDuration? {
        guard !isExpired(at: now) else { return nil }
        let left = instant - now
        guard let perTryTimeout else { return left }
        return min(max(perTryTimeout, .zero), left)
    }

    /// The deadline to pass to a child call started at `now`: the earlier of this deadline and `now + perTryTimeout`,
    /// or `nil` when the deadline has passed and the call should fail fast.
    /// - Complexity: O(1).
    public func child(perTryTimeout: SimDuration?, at now: SimInstant) -> Deadline? {
        budget(perTryTimeout: perTryTimeout, at: now).map { Deadline(now + $0) }
    }

    /// Whether `lhs` comes before `rhs`.
    public static func < (lhs: Deadline, rhs: Deadline) -> Bool { lhs.instant < rhs.instant }
}
