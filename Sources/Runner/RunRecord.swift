//===----------------------------------------------------------------------===//
// meshsim — Runner
//===----------------------------------------------------------------------===//

import Reports

/// The provenance of a run, written as `run.json`: what ran, with which seeds, and how long it took.
///
/// The timing fields (`jobs`, `wall_seconds` and the rates) differ between runs; every other field, and every CSV
/// beside it, is the same for the same scenario and seeds.
struct RunRecord {
    var scenario: String
    var scenarioFile: String
    var scenarioSHA256: String
    var seeds: [UInt64]
    var variants: [String]
    var rankBy: String
    /// How many shards a merged run was split into; nil for a run in one process.
    var shards: Int?
    var jobs: Int
    var wallSeconds: Double
    var events: UInt64
    var requests: UInt64
    var completed: UInt64
    var simulatedSeconds: Double

    /// The record as pretty-printed JSON, keys in a fixed order.
    var json: String {
        let quote = JSONFormat.quote
        let wall = max(wallSeconds, 1e-9)
        var lines = [
            "  \"meshsim_version\": \(quote(meshsimVersion))",
            "  \"scenario\": \(quote(scenario))",
            "  \"scenario_file\": \(quote(scenarioFile))",
            "  \"scenario_sha256\": \(quote(scenarioSHA256))",
            "  \"seeds\": [\(seeds.map(String.init).joined(separator: ", "))]",
            "  \"variants\": [\(variants.map(quote).joined(separator: ", "))]",
            "  \"rank_by\": \(quote(rankBy))",
        ]
        if let shards { lines.append("  \"shards\": \(shards)") }
        lines += [
            "  \"jobs\": \(jobs)",
            "  \"wall_seconds\": \(CSVFormat.fixed(wallSeconds, digits: 3))",
            "  \"events\": \(events)",
            "  \"events_per_second\": \(CSVFormat.fixed(Double(events) / wall, digits: 0))",
            "  \"requests\": \(requests)",
            "  \"completed_requests\": \(completed)",
            "  \"completed_requests_per_second\": \(CSVFormat.fixed(Double(completed) / wall, digits: 0))",
            "  \"simulated_seconds\": \(CSVFormat.fixed(simulatedSeconds, digits: 3))",
        ]
        return "{\n" + lines.joined(separator: ",\n") + "\n}\n"
    }
}
