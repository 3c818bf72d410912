//===----------------------------------------------------------------------===//
// meshsim — Breakers
//===----------------------------------------------------------------------===//

import SimCore

/// Call counts over a sliding window: all calls, failed calls, slow calls, and calls both slow and failed.
public struct CallAggregate: Sendable, Equatable {
    /// Calls recorded.
    public var calls = 0
    /// Calls that failed (slow or not).
    public var failed = 0
    /// Calls slower than the slow-call threshold (failed or not).
    public var slow = 0
    /// Calls both slow and failed.
    public var slowFailed = 0

    /// Creates an empty aggregate.
    public init() {}

    mutating func add(_ code: UInt8) {
        calls += 1
        if code & 1 != 0 { failed += 1 }
        if code & 2 != 0 { slow += 1 }
        if code == 3 { slowFailed += 1 }
    }

    mutating func subtract(_ other: CallAggregate) {
        calls -= other.calls
        failed -= other.failed
        slow -= other.slow
        slowFailed -= other.slowFailed
    }

    mutating func subtract(_ code: UInt8) {
        calls -= 1
        if code & 1 != 0 { failed -= 1 }
        if code & 2 != 0 { slow -= 1 }
        if code == 3 { slowFailed -= 1 }
    }

    static func + (lhs: CallAggregate, rhs: CallAggregate) -> CallAggregate {
        var sum = lhs
        sum.calls += rhs.calls
        sum.failed += rhs.failed
        sum.slow += rhs.slow
        sum.slowFailed += rhs.slowFailed
        return sum
    }
}

/// resilience4j's sliding-window metrics, with storage sized once: a ring of the last N outcomes (COUNT_BASED), or N
/// one-second buckets keyed by epoch second, stale buckets reset as the window moves (TIME_BASED).
///
/// Source: resilience4j `resilience4j-core/…/metrics/FixedSizeSlidingWindowMetrics.java` and
/// `SlidingTimeWindowMetrics.java`, as summarized in the project reference (`algorithms.md` §7.1).
struct SlidingWindowMetrics: Sendable {
    private struct Bucket: Sendable {
        var epochSecond: Int64 = 0
        var counts = CallAggregate()
    }

    let timeBased: Bool
    let size: Int
    private var outcomes: [UInt8]
    private var buckets: [Bucket]
    private var head = 0
    private var filled = 0
    private(set) var totals = CallAggregate()

    init(timeBased: Bool, size: Int) {
        self.timeBased = timeBased
        self.size = size
        outcomes = [UInt8](repeating: 0, count: timeBased ? 0 : size)
        buckets = [Bucket](repeating: Bucket(), count: timeBased ? size : 0)
    }

    /// Records one call ending at `now`.
    mutating func record(failed: Bool, slow: Bool, at now: SimInstant) {
        let code: UInt8 = (failed ? 1 : 0) | (slow ? 2 : 0)
        if timeBased {
            move(to: Self.epochSecond(now))
            buckets[head].counts.add(code)
        } else {
            if filled == size {
                totals.subtract(outcomes[head])
            } else {
                filled += 1
            }
            outcomes[head] = code
            head = (head + 1) % size
        }
        totals.add(code)
    }

    /// The totals as of `now` (a TIME_BASED window leaves out buckets older than the window).
    func snapshot(at now: SimInstant) -> CallAggregate {
        guard timeBased else { return totals }
        let current = Self.epochSecond(now)
        var sum = CallAggregate()
        for bucket in buckets where bucket.epochSecond > current - Int64(size) && bucket.epochSecond <= current {
            sum = sum + bucket.counts
        }
        return sum
    }

    /// Moves a TIME_BASED window to `now`, dropping stale buckets from the totals.
    mutating func advance(to now: SimInstant) {
        if timeBased { move(to: Self.epochSecond(now)) }
    }

    /// Empties the window.
    mutating func reset() {
        for i in outcomes.indices { outcomes[i] = 0 }
        for i in buckets.indices { buckets[i].counts = CallAggregate() }
        head = 0
        filled = 0
        totals = CallAggregate()
    }

    private mutating func move(to second: Int64) {
        let difference = second - buckets[head].epochSecond
        guard difference > 0 else { return }
        let steps = Int(min(difference, Int64(size)))
        for step in 0..<steps {
            head = (head + 1) % size
            totals.subtract(buckets[head].counts)
            buckets[head] = Bucket(epochSecond: second - Int64(steps - 1 - step))
        }
    }

    /// The whole second `now` falls in (floor division).
    static func epochSecond(_ now: SimInstant) -> Int64 {
        let ns = now.nanoseconds
        let second: Int64 = 1_000_000_000
        return ns >= 0 ? ns / second : -((-ns + second - 1) / second)
    }
}
