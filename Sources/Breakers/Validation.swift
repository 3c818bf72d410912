//===----------------------------------------------------------------------===//
// meshsim — Breakers
//===----------------------------------------------------------------------===//

import SimCore

/// Checks shared by the configuration initializers; each throws a `PolicyParameterError` naming the parameter.
enum Validate {
    static func atLeast(_ value: Int, _ minimum: Int, _ parameter: String) throws {
        if value < minimum { throw PolicyParameterError(parameter, "must be at least \(minimum), got \(value)") }
    }

    static func percent(_ value: Double, _ parameter: String, allowZero: Bool) throws {
        let ok = value.isFinite && value <= 100 && (allowZero ? value >= 0 : value > 0)
        if !ok {
            let range = allowZero ? "[0, 100]" : "(0, 100]"
            throw PolicyParameterError(parameter, "must be a percentage in \(range), got \(value)")
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
