import Foundation
import MeshModel
import Reports
import Scenario
import SimCore
import Spec
import Testing

/// Seeded mutations of the bundled scenarios: each must either run or be rejected with located messages — never
/// crash, trap or hang.
@Suite("Scenario mutations")
struct MutationFuzzTests {
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            return StreamSeed.splitMix64(state)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
        mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    }

    static let replacements = [
        "-1", "0", "1e12", "3.5", "abc", "", "1e400", "99999999999999999999", "-0.5", "~", "[]", "{}", "true", "0.0001",
        "1ms", "-3s", "5parsecs", "lognormal:median=1ms", "exponential:mean=0ms", "2h", "NaN", "'quoted'", "api", "b",
    ]

    /// One mutation of `text`.
    static func mutate(_ text: String, _ rng: inout Rng) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let i = rng.below(lines.count)
        switch rng.below(9) {
        case 0:
            lines.remove(at: i)
        case 1:
            lines.insert(lines[i], at: i)
        case 2:
            // Replace a number or word with something else.
            var tokens = lines[i].split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            let t = rng.below(tokens.count)
            tokens[t] = tokens[t].hasSuffix(":") ? tokens[t] : rng.pick(replacements)
            lines[i] = tokens.joined(separator: " ")
        case 3:
            // Misspell a key or value.
            var chars = Array(lines[i])
            if chars.count > 2 {
                let j = rng.below(chars.count - 1)
                chars.swapAt(j, j + 1)
            }
            lines[i] = String(chars)
        case 4:
            let insert: String = rng.pick([":", "[", "{", "-", " ", "\t", "#", "'", "\"", ",", "&a", "*a", "!!int "])
            let at = lines[i].index(lines[i].startIndex, offsetBy: rng.below(lines[i].count + 1))
            lines[i].insert(contentsOf: insert, at: at)
        case 5:
            let cut = rng.below(text.count)
            return String(text.prefix(cut))
        case 6:
            lines[i] = rng.below(2) == 0 ? "  " + lines[i] : String(lines[i].drop { $0 == " " })
        case 7:
            lines[i] = lines[i].replacingOccurrences(
                of: rng.pick(["ms", "s", "us"]),
                with: rng.pick(["", "xs", "ms"])
            )
        default:
            // Replace a value after a colon.
            if let colon = lines[i].firstIndex(of: ":") {
                lines[i] = String(lines[i][...colon]) + " " + rng.pick(replacements)
            }
        }
        return lines.joined(separator: "\n")
    }

    @Test("1,000 seeded mutations of the bundled scenarios each run or fail with located messages")
    func mutations() throws {
        let sources = try ["quickstart.yaml", "mm1.yaml", "mmc.yaml", "md1.yaml", "zones-and-health.yaml"].map {
            try String(contentsOfFile: bundled($0), encoding: .utf8)
        }
        var rng = Rng(state: 20_261_126)
        var ran = 0
        var rejected = 0
        for n in 0..<1_000 {
            var text = sources[n % sources.count]
            for _ in 0...rng.below(3) { text = Self.mutate(text, &rng) }
            do {
                let scenario = try Scenario.parse(text, file: "mutant-\(n).yaml")
                for variant in scenario.variants.prefix(2) {
                    var spec = variant.spec
                    if spec.duration > .seconds(2) { spec.duration = .seconds(2) }
                    if spec.warmup >= spec.duration { spec.warmup = .zero }
                    var simulation = Simulation(spec: spec, seed: 1)
                    simulation.eventLimit = 100_000
                    simulation.stallLimit = 100_000
                    let result = simulation.run()
                    #expect(result.events > 0 || spec.clients.isEmpty || result.summary.requests == 0)
                }
                ran += 1
            } catch let failure as ScenarioValidationFailure {
                rejected += 1
                #expect(!failure.errors.isEmpty)
                for error in failure.errors {
                    #expect(!error.message.isEmpty)
                    #expect(error.file == "mutant-\(n).yaml")
                    #expect(error.description.contains("error:"))
                }
            }
        }
        // Both outcomes occur in numbers: the mutations exercise the validator and the model.
        #expect(ran > 100, "ran \(ran)")
        #expect(rejected > 300, "rejected \(rejected)")
    }

    @Test("a zero-delay loop is detected, not run forever")
    func stall() throws {
        let yaml = """
            duration: 10s
            services:
              api: {service_time: "constant:0ms"}
            clients:
              users: {target: api, users: 3, think_time: "constant:0ms"}
            """
        let scenario = try Scenario.parse(yaml, file: "zeno.yaml")
        var simulation = Simulation(spec: scenario.variants[0].spec, seed: 1)
        simulation.stallLimit = 50_000
        let result = simulation.run()
        #expect(result.stalledAt == SimInstant.zero)
    }
}
