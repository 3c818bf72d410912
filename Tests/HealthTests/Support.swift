import SimCore

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny seeded generator for reproducible tests.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0..<bound`.
    mutating func below(_ bound: Int) -> Int { Int(uniformBelow(UInt64(bound), using: &self)) }
}

/// A generator that counts its draws, to check that 0 % and 100 % enforcement draw nothing.
struct CountingRNG: RandomNumberGenerator {
    var inner = SplitMix64(seed: 42)
    var draws = 0

    mutating func next() -> UInt64 {
        draws += 1
        return inner.next()
    }
}

/// The instant `seconds` seconds after the start.
func t(_ seconds: Int64) -> SimInstant { SimInstant.zero + .seconds(seconds) }

/// The instant `milliseconds` milliseconds after the start.
func tms(_ milliseconds: Int64) -> SimInstant { SimInstant.zero + .milliseconds(milliseconds) }
