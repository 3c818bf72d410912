// The benchmark harness: timing, allocation counting, the reference loop, thresholds and the check.
//
//   swift run -c release --package-path Benchmarks PolicyBenchmarks [--quick] [--filter TEXT]...
//       [--check FILE] [--write-thresholds FILE]

import CMallocCounter
import Foundation
import SimCore

#if canImport(Glibc)
    import Glibc
#endif

/// A fast deterministic generator (SplitMix64), so that the benchmark measures the balancer, not the generator.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return StreamSeed.splitMix64(state)
    }
}

/// Monotonic nanoseconds.
func nanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// The command line.
enum Options {
    static let arguments = Array(CommandLine.arguments.dropFirst())
    static let quick = arguments.contains("--quick")
    static let iterations = quick ? 200_000 : 2_000_000

    /// The values of a repeatable option.
    static func values(_ name: String) -> [String] {
        var found: [String] = []
        var i = 0
        while i < arguments.count {
            if arguments[i] == name, i + 1 < arguments.count {
                found.append(arguments[i + 1])
                i += 2
            } else {
                i += 1
            }
        }
        return found
    }

    static let filters = values("--filter")
    static let check = values("--check").last
    static let writeThresholds = values("--write-thresholds").last

    /// Whether the benchmark `name` runs (every one without `--filter`).
    static func selects(_ name: String) -> Bool { filters.isEmpty || filters.contains { name.contains($0) } }
}

nonisolated(unsafe) var sink = 0

/// One measured benchmark.
struct Measurement {
    var name: String
    var nanosecondsPerCall: Double
    var allocations: UInt64
    var calls: Int
    /// ns per call over the reference loop's ns per iteration, measured in the same run.
    var relative: Double
}

nonisolated(unsafe) var measurements: [Measurement] = []

/// The reference loop's ns per iteration in this run: a fixed amount of integer work (64 SplitMix64 steps), so
/// that times can be compared across machines and loads as ratios to it.
nonisolated(unsafe) var referenceNanoseconds = 0.0

/// Measures the reference loop (best of five, to shrug off a preemption).
func calibrate() {
    var best = Double.infinity
    var rng = SplitMix(state: 1)
    for _ in 0..<5 {
        let rounds = Options.iterations / 4
        let start = nanoseconds()
        for _ in 0..<rounds {
            var x: UInt64 = 0
            for _ in 0..<64 { x ^= rng.next() }
            sink &+= Int(truncatingIfNeeded: x)
        }
        best = min(best, Double(nanoseconds() - start) / Double(rounds))
    }
    referenceNanoseconds = best
    print("reference loop (64 SplitMix64 steps): \(format1(best)) ns")
}

/// Times `iterations` calls of `body` after a warm-up; prints and records ns/call and allocations.
func measure(_ name: String, iterations: Int, _ body: () -> Int) {
    guard Options.selects(name) else { return }
    for _ in 0..<(iterations / 10) { sink &+= body() }
    let allocationsBefore = meshsim_allocation_count()
    let start = nanoseconds()
    for _ in 0..<iterations { sink &+= body() }
    let elapsed = nanoseconds() - start
    let allocations = meshsim_allocation_count() - allocationsBefore
    let perCall = Double(elapsed) / Double(iterations)
    measurements.append(
        Measurement(
            name: name,
            nanosecondsPerCall: perCall,
            allocations: allocations,
            calls: iterations,
            relative: perCall / referenceNanoseconds
        )
    )
    print(
        "\(name.padding(58)) \(String(format1(perCall)).leftPadding(8)) ns/call   \(allocations) allocations in \(iterations) calls"
    )
}

func format2(_ x: Double) -> String {
    let hundredths = Int((x * 100).rounded())
    let fraction = String(hundredths % 100)
    return "\(hundredths / 100)." + (fraction.count == 1 ? "0" : "") + fraction
}

func format1(_ x: Double) -> String {
    let tenths = Int((x * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

extension String {
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
    func leftPadding(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}

/// The committed thresholds of each benchmark.
struct Threshold: Codable {
    /// Heap allocations per call allowed; 0 means none at all (gated exactly).
    var allocationsPerCall: Double
    /// The most ns per call allowed, as a multiple of the reference loop's ns in the same run.
    var maxRelativeTime: Double

    enum CodingKeys: String, CodingKey {
        case allocationsPerCall = "allocations_per_call"
        case maxRelativeTime = "max_relative_time"
    }
}

/// The thresholds file: one entry per benchmark name.
struct ThresholdFile: Codable {
    var note: String
    var benchmarks: [String: Threshold]
}

/// How much slower than measured a benchmark may get before the check fails: timing on a shared CI machine varies
/// by tens of percent, so the gate is loose; allocations do not vary and are gated exactly.
let timeMargin = 3.0

/// Writes thresholds from this run's measurements: allocations as measured (per call, rounded up to a thousandth;
/// zero stays zero), times at `timeMargin` × the measured ratio.
func writeThresholds(to path: String) throws {
    var file = ThresholdFile(
        note:
            "Written by PolicyBenchmarks --write-thresholds; checked by --check (scripts/bench-policies). Times are ratios to the reference loop of the same run; allocations are exact.",
        benchmarks: [:]
    )
    for m in measurements {
        let perCall = Double(m.allocations) / Double(m.calls)
        file.benchmarks[m.name] = Threshold(
            allocationsPerCall: m.allocations == 0 ? 0 : (perCall * 1000).rounded(.up) / 1000,
            maxRelativeTime: (m.relative * timeMargin * 100).rounded(.up) / 100
        )
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(file).write(to: URL(fileURLWithPath: path))
    print("thresholds for \(measurements.count) benchmarks written to \(path)")
}

/// Compares this run with the thresholds in `path`; prints every breach and returns how many there were.
func checkThresholds(_ path: String) throws -> Int {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let file = try JSONDecoder().decode(ThresholdFile.self, from: data)
    var breaches = 0
    print("")
    print("check against \(path):")
    for m in measurements {
        guard let threshold = file.benchmarks[m.name] else {
            print("  no threshold: \(m.name) (add it with --write-thresholds)")
            breaches += 1
            continue
        }
        let allowed =
            threshold.allocationsPerCall == 0
            ? 0 : UInt64((threshold.allocationsPerCall * Double(m.calls)).rounded(.up))
        if m.allocations > allowed {
            print("  BREACH allocations: \(m.name): \(m.allocations) in \(m.calls) calls, allowed \(allowed)")
            breaches += 1
        }
        if m.relative > threshold.maxRelativeTime {
            print(
                "  BREACH time: \(m.name): \(format1(m.nanosecondsPerCall)) ns/call = \(format2(m.relative)) × reference, allowed \(format2(threshold.maxRelativeTime)) ×"
            )
            breaches += 1
        }
    }
    for name in file.benchmarks.keys.sorted()
    where Options.selects(name) && !measurements.contains(where: { $0.name == name }) {
        print("  NOT RUN: \(name) has a threshold but did not run")
        breaches += 1
    }
    print(breaches == 0 ? "  all \(measurements.count) benchmarks within their thresholds" : "  \(breaches) breach(es)")
    return breaches
}

/// Writes or checks thresholds as the options ask; exits 1 on a breach.
func finish() {
    if sink == 42 { print("") }
    do {
        if let path = Options.writeThresholds { try writeThresholds(to: path) }
        if let path = Options.check, try checkThresholds(path) > 0 { exit(1) }
    } catch {
        print("error: \(error)")
        exit(2)
    }
}
