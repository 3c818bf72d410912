import SimCore
import Testing

@Suite("SimDuration parsing and formatting")
struct SimDurationTests {
    @Test(
        "durations with units are exact to the nanosecond",
        arguments: [
            ("250us", Int64(250_000)), ("20ms", 20_000_000), ("1.5s", 1_500_000_000), ("2m", 120_000_000_000),
            ("1h", 3_600_000_000_000), ("0", 0), ("0.1s", 100_000_000), ("7ns", 7), ("1.0005ms", 1_000_500),
            (" 3 s ", 3_000_000_000), ("0.0000000015s", 2), ("+5ms", 5_000_000), (".5s", 500_000_000),
        ]
    )
    func parses(text: String, nanoseconds: Int64) throws {
        #expect(try SimDuration(parsing: text).nanoseconds == nanoseconds)
    }

    @Test("a number without a unit is rejected")
    func missingUnit() {
        #expect(throws: SimDuration.ParseError.missingUnit("250")) { try SimDuration(parsing: "250") }
    }

    @Test(
        "malformed durations are rejected, never trap",
        arguments: ["", "ms", "5 parsecs", "1.2.3s", "-5ms", "99999999999999999999h", "5e3ms", "1..s", "abc", "NaNs"]
    )
    func rejects(text: String) {
        #expect(throws: SimDuration.ParseError.self) { try SimDuration(parsing: text) }
    }

    @Test("formatting picks the largest exact unit and round-trips")
    func formats() throws {
        #expect(SimDuration.milliseconds(1500).formatted == "1500ms")
        #expect(SimDuration.seconds(120).formatted == "2m")
        #expect(SimDuration.microseconds(250).formatted == "250us")
        #expect(SimDuration.zero.formatted == "0")
        for ns: Int64 in [1, 999, 1_000, 1_234_567, 60_000_000_000, 3_600_000_000_000, 5_000_000_001] {
            let d = SimDuration(nanoseconds: ns)
            #expect(try SimDuration(parsing: d.formatted) == d)
        }
    }
}

@Suite("Stream seeds and suggestions")
struct StreamSeedTests {
    @Test("stream seeds are stable, and differ by key, seed and replication")
    func stable() {
        // FNV-1a of "a" is a published test vector.
        #expect(StreamSeed.fnv1a("a") == 0xaf63_dc4c_8601_ec8c)
        let base = StreamSeed.derive(seed: 1, replication: 0, key: "client/users/arrivals")
        #expect(base == StreamSeed.derive(seed: 1, replication: 0, key: "client/users/arrivals"))
        #expect(base != StreamSeed.derive(seed: 2, replication: 0, key: "client/users/arrivals"))
        #expect(base != StreamSeed.derive(seed: 1, replication: 1, key: "client/users/arrivals"))
        #expect(base != StreamSeed.derive(seed: 1, replication: 0, key: "client/users/think"))
    }

    @Test("misspellings get the closest name; unrelated words get none")
    func suggestions() {
        #expect(closestName(to: "timout", among: ["timeout", "retries"]) == "timeout")
        #expect(closestName(to: "lognormla", among: ["lognormal", "normal"]) == "lognormal")
        #expect(closestName(to: "zzzzzz", among: ["timeout", "retries"]) == nil)
        #expect(editDistance("kitten", "sitting") == 3)
    }

    @Test("uniformBelow stays in range and covers it")
    func uniform() {
        var rng = SplitMix(state: 42)
        var seen = Set<UInt64>()
        for _ in 0..<10_000 {
            let v = uniformBelow(7, using: &rng)
            #expect(v < 7)
            seen.insert(v)
        }
        #expect(seen.count == 7)
    }
}

/// A tiny deterministic generator for tests.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return StreamSeed.splitMix64(state)
    }
}
