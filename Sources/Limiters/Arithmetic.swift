//===----------------------------------------------------------------------===//
// meshsim — Limiters
//===----------------------------------------------------------------------===//

import SimCore

// Small integer helpers shared by the limiters: floor division and roundings that never trap.

/// ⌊a / b⌋ for b > 0 (Swift's `/` truncates toward zero).
@inlinable
func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && a < 0) ? q - 1 : q
}

/// a mod b in [0, b) for b > 0.
@inlinable
func floorMod(_ a: Int64, _ b: Int64) -> Int64 {
    let r = a % b
    return r < 0 ? r + b : r
}

/// Rounds a non-negative number of nanoseconds up to an integer, saturating at a large finite value.
@inlinable
func ceilNanoseconds(_ value: Double) -> Int64 {
    if !(value > 0) { return 0 }
    if value >= 4.0e18 { return Int64.max / 2 }
    return Int64(value.rounded(.up))
}

/// a + b for b ≥ 0, saturating at `Int.max`.
@inlinable
func saturatingAdd(_ a: Int, _ b: Int) -> Int {
    let (sum, overflow) = a.addingReportingOverflow(b)
    return overflow ? Int.max : sum
}

extension SimInstant {
    /// The instant `duration` before `self` (module-internal; SimCore defines only `+`).
    @inlinable
    static func - (lhs: SimInstant, rhs: SimDuration) -> SimInstant {
        SimInstant(nanoseconds: lhs.nanoseconds &- rhs.nanoseconds)
    }
}
