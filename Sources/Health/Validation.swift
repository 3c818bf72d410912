//===----------------------------------------------------------------------===//
// meshsim — Health
//===----------------------------------------------------------------------===//

import SimCore

/// Checks shared by the configuration initializers; each throws a `PolicyParameterError` naming the parameter.
enum Validate {
    static func atLeast(_ value: Int, _ minimum: Int, _ parameter: String) throws {
        if value < minimum { throw PolicyParameterError(parameter, "must be at least \(minimum), got \(value)") }
    }

    static func percent(_ value: Int, _ parameter: String) throws {
        if !(0...100).contains(value) {
            throw PolicyParameterError(parameter, "must be a percentage in [0, 100], got \(value)")
        }
    }

    static func positive(_ value: SimDuration, _ parameter: String) throws {
        if value.nanoseconds <= 0 {
            throw PolicyParameterError(parameter, "must be a positive duration, got \(value.nanoseconds)ns")
        }
    }

    static func nonNegative(_ value: SimDuration, _ parameter: String) throws {
        if value.nanoseconds < 0 {
            throw PolicyParameterError(parameter, "must not be negative, got \(value.nanoseconds)ns")
        }
    }
}

/// Draws "enforce with probability `percent` %" as Envoy's runtime `featureEnabled` does; 0 and 100 draw nothing.
@inline(__always)
func enforce(percent: Int, using rng: inout some RandomNumberGenerator) -> Bool {
    if percent >= 100 { return true }
    if percent <= 0 { return false }
    return uniformBelow(100, using: &rng) < UInt64(percent)
}
