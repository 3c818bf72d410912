//===----------------------------------------------------------------------===//
// meshsim — SimCore
//===----------------------------------------------------------------------===//

extension SimDuration {
    /// The units a written duration may carry, with their length in nanoseconds.
    public static let units: [(suffix: String, nanoseconds: Int64)] = [
        ("ns", 1), ("us", 1_000), ("µs", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000),
        ("m", 60_000_000_000), ("h", 3_600_000_000_000),
    ]

    /// Why a written duration could not be read.
    public enum ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        /// The text is empty.
        case empty
        /// A number without a unit, such as `250`.
        case missingUnit(String)
        /// A unit that is not one of `ns`, `us`, `ms`, `s`, `m`, `h`.
        case unknownUnit(String)
        /// The number part is not a decimal number.
        case badNumber(String)
        /// The value is negative.
        case negative(String)
        /// The value does not fit in 64-bit nanoseconds.
        case tooLarge(String)

        public var description: String {
            switch self {
            case .empty: return "an empty duration"
            case .missingUnit(let t): return "'\(t)' has no unit (write e.g. '\(t)ms'; units: ns, us, ms, s, m, h)"
            case .unknownUnit(let t): return "'\(t)' has an unknown unit (units: ns, us, ms, s, m, h)"
            case .badNumber(let t): return "'\(t)' is not a number followed by a unit"
            case .negative(let t): return "'\(t)' is negative"
            case .tooLarge(let t): return "'\(t)' is too large"
            }
        }
    }

    /// Reads a duration written with a unit: `250us`, `20ms`, `1.5s`, `2m`, `1h`, or `0` alone.
    ///
    /// Decimal fractions are exact to the nanosecond (no floating point), so `0.1s` is 100,000,000 ns.
    public init(parsing text: String) throws(ParseError) {
        let trimmed = text.trimmingSpaces()
        guard !trimmed.isEmpty else { throw .empty }
        if trimmed == "0" {
            self = .zero
            return
        }
        var numberEnd = trimmed.startIndex
        while numberEnd < trimmed.endIndex,
            trimmed[numberEnd].isASCII,
            trimmed[numberEnd].isNumber || trimmed[numberEnd] == "." || trimmed[numberEnd] == "-"
                || trimmed[numberEnd] == "+"
        {
            numberEnd = trimmed.index(after: numberEnd)
        }
        let number = String(trimmed[..<numberEnd])
        let unit = String(trimmed[numberEnd...]).trimmingSpaces()
        if number.isEmpty { throw .badNumber(trimmed) }
        if unit.isEmpty { throw .missingUnit(trimmed) }
        guard let scale = SimDuration.units.first(where: { $0.suffix == unit })?.nanoseconds else {
            throw .unknownUnit(trimmed)
        }
        var digits = Substring(number)
        if digits.first == "-" {
            throw .negative(trimmed)
        }
        if digits.first == "+" { digits = digits.dropFirst() }
        let parts = digits.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, !(parts.count == 1 && parts[0].isEmpty),
            parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            !(parts[0].isEmpty && (parts.count < 2 || parts[1].isEmpty))
        else { throw .badNumber(trimmed) }
        var total: Int64 = 0
        for ch in parts[0] {
            let (m, o1) = total.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(ch.wholeNumberValue!))
            if o1 || o2 { throw .tooLarge(trimmed) }
            total = a
        }
        let (whole, overflow) = total.multipliedReportingOverflow(by: scale)
        if overflow || whole > Int64.max / 4 { throw .tooLarge(trimmed) }
        var fraction: Int64 = 0
        if parts.count == 2 {
            var place = scale
            var droppedDigitSeen = false
            for ch in parts[1] {
                let digit = Int64(ch.wholeNumberValue!)
                if place >= 10 {
                    place /= 10
                    fraction += digit * place
                } else if !droppedDigitSeen {
                    // Beyond nanosecond precision: round half up on the first dropped digit.
                    droppedDigitSeen = true
                    if digit >= 5 { fraction += 1 }
                }
            }
        }
        self.init(nanoseconds: whole + fraction)
    }

    /// The duration written exactly in the largest unit that divides it, e.g. `2m`, `1500ms`, `250us`, `0`.
    public var formatted: String {
        if nanoseconds == 0 { return "0" }
        for (suffix, scale) in SimDuration.units.reversed() where suffix != "µs" && nanoseconds % scale == 0 {
            return "\(nanoseconds / scale)\(suffix)"
        }
        return "\(nanoseconds)ns"
    }
}

extension String {
    /// The string without leading and trailing spaces and tabs (SimCore has no Foundation).
    package func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
