//===----------------------------------------------------------------------===//
// meshsim — LimitersTests
//===----------------------------------------------------------------------===//

import Limiters
import SimCore
import Testing

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny seeded generator for property loops.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `range`.
    mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(uniformBelow(UInt64(range.count), using: &self))
    }

    /// A uniform integer in `range` (64-bit).
    mutating func int64(in range: ClosedRange<Int64>) -> Int64 {
        range.lowerBound + Int64(uniformBelow(UInt64(range.upperBound - range.lowerBound + 1), using: &self))
    }

    /// True with probability `p`.
    mutating func chance(_ p: Double) -> Bool { uniformUnit(using: &self) < p }
}

/// A generator that always returns the same word, so `uniformUnit` always returns the same value.
struct ConstantRNG: RandomNumberGenerator {
    var word: UInt64

    /// A generator whose `uniformUnit` is exactly `unit` (a multiple of 2⁻⁵³ in [0, 1)).
    init(unit: Double) { word = UInt64(unit * 0x1.0p53) << 11 }

    mutating func next() -> UInt64 { word }
}

/// An instant `ms` milliseconds after the start.
func ms(_ value: Int64) -> SimInstant { SimInstant(nanoseconds: value * 1_000_000) }

/// An instant `s` seconds after the start.
func sec(_ value: Int64) -> SimInstant { SimInstant(nanoseconds: value * 1_000_000_000) }

/// Expects `body` to throw a `PolicyParameterError` about `parameter`.
func expectParameterError(
    _ parameter: String,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) {
    let error = #expect(throws: PolicyParameterError.self, sourceLocation: sourceLocation) { try body() }
    #expect(error?.parameter == parameter, sourceLocation: sourceLocation)
}

/// The largest total of permits admitted in any closed window `[t, t + window]` (t ranging over admission times).
///
/// `admissions` must be sorted by time.
func maxPermitsInAnyWindow(_ admissions: [(time: Int64, permits: Int)], window: Int64) -> Int {
    var best = 0
    var total = 0
    var end = 0
    for start in admissions.indices {
        while end < admissions.count && admissions[end].time - admissions[start].time <= window {
            total += admissions[end].permits
            end += 1
        }
        best = max(best, total)
        total -= admissions[start].permits
    }
    return best
}

/// A random request stream: non-decreasing times with bursts (zero gaps) and idle spells.
func randomArrivals(count: Int, meanGap: Int64, using rng: inout SplitMix64) -> [Int64] {
    var times: [Int64] = []
    times.reserveCapacity(count)
    var now = rng.int64(in: 0...meanGap)
    for _ in 0..<count {
        times.append(now)
        if rng.chance(0.3) { continue }  // same-instant burst
        if rng.chance(0.05) {
            now += rng.int64(in: 0...(20 * meanGap))  // idle spell: the limiter refills
        } else {
            now += rng.int64(in: 0...(2 * meanGap))
        }
    }
    return times
}
