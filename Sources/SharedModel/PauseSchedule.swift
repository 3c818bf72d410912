//===----------------------------------------------------------------------===//
// meshsim — SharedModel
//===----------------------------------------------------------------------===//

import SimCore

/// Stop-the-world pauses of a replica: each lasts `length`, one starts every `every` from `origin`, and the last one
/// starts before `until` (a garbage collector's pauses, a noisy neighbour's throttling).
///
/// Work makes progress only between pauses. Both halves use ``finishTime(start:work:)``: the simulator schedules
/// the end of a request at it in virtual nanoseconds, `serve` arms a timer for it on its event loop.
public struct PauseSchedule: Sendable, Equatable {
    /// When the first pause begins (ns on the model's timeline).
    public var origin: Int64
    /// The period between pause starts (ns, > `length`).
    public var every: Int64
    /// How long each pause lasts (ns, > 0).
    public var length: Int64
    /// No pause starts at or after this time (`Int64.max`: pauses go on for ever).
    public var until: Int64

    /// A pause schedule; `0 < length < every` and all values ≥ 0.
    public init(origin: Int64, every: Int64, length: Int64, until: Int64 = .max) {
        self.origin = origin
        self.every = every
        self.length = length
        self.until = until
    }

    /// When work of length `work` started at `start` ends.
    ///
    /// Pauses start at `origin + k × every` for every `k ≥ 0` whose start is before `until`, and each lasts `length`
    /// in full; work progresses only between them. The answer is computed, not stepped: a request that spans a
    /// million pauses costs the same as one that spans none. A finish beyond the representable future is
    /// ``SimInstant/distantFuture`` (it never comes within a run).
    ///
    /// - Complexity: O(1).
    public func finishTime(start: Int64, work: Int64) -> Int64 {
        var t = start
        var remaining = work
        if t >= until { return t + remaining }
        if t < origin {
            // Before the first pause.
            if origin >= until || t + remaining <= origin { return t + remaining }
            remaining -= origin - t
            t = origin
        }
        let pauseStart = origin + (t - origin) / every * every
        if t < pauseStart + length { t = pauseStart + length }  // inside a pause: wait for it to end
        let nextPause = pauseStart + every
        if nextPause >= until || t + remaining <= nextPause { return t + remaining }
        // From the start of a pause at `nextPause`: pause, then `every - length` of work, and again, until the
        // pauses stop (the last starts before `until`); after the last one, work runs unbroken.
        remaining -= nextPause - t
        let workPerPeriod = every - length
        let lastPause = (until - 1 - nextPause) / every  // pauses at nextPause + i × every, i = 0…lastPause
        let periods = min((remaining - 1) / workPerPeriod, lastPause)
        let (span, overflow) = periods.multipliedReportingOverflow(by: every)
        let horizon = SimInstant.distantFuture.nanoseconds
        guard !overflow, span < horizon - nextPause else { return horizon }
        let finish = nextPause + span + length + (remaining - periods * workPerPeriod)
        return min(finish, horizon)
    }
}
