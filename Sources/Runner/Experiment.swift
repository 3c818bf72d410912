//===----------------------------------------------------------------------===//
// meshsim — Runner
//===----------------------------------------------------------------------===//

import Dispatch
import Foundation
public import MeshModel
import Reports
public import Scenario
import SimCore
import Spec
import Synchronization

/// Runs every variant of a scenario over its seeds, in parallel across cores, and collects the reports.
///
/// Each replication has its own kernel and streams and runs on one thread; results are gathered by index and written
/// in (variant, seed) order, so the CSVs are byte-identical whatever the number of jobs.
public struct Experiment: Sendable {
    /// One replication's identity and result.
    public struct Replication: Sendable {
        /// Its place in the run's (variant, seed) order: variant index × seeds + seed offset.
        public var unit: Int
        /// The variant's name.
        public var variant: String
        /// The replication's seed.
        public var seed: UInt64
        /// What the simulation produced.
        public var result: Simulation.Result
    }

    /// A variant's metrics across seeds, with its rank.
    public struct VariantComparison: Sendable {
        /// The variant's name.
        public var variant: String
        /// 1 for the best.
        public var rank: Int
        /// Replications behind the figures.
        public var seeds: Int
        /// Per metric (``Experiment/comparisonMetrics``): mean across seeds and 95% CI half-width.
        public var metrics: [String: (mean: Double?, halfWidth: Double?)]
    }

    /// The metrics compared across seeds in `comparison.csv`.
    public static let comparisonMetrics = [
        "success_rate", "goodput_rps", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms",
        "attempts_per_request",
    ]

    /// The scenario run.
    public let scenario: Scenario
    /// Every replication, in (variant, seed) order.
    public let replications: [Replication]
    /// The variants ranked (best first).
    public let comparison: [VariantComparison]
    /// Wall-clock seconds for all replications.
    public let wallSeconds: Double
    /// Jobs used.
    public let jobs: Int

    /// Replications that stopped because simulated time stopped advancing (a zero-delay loop in the scenario).
    public var stalls: [Replication] { replications.filter { $0.result.stalledAt != nil } }

    /// Replications that stopped because the model passed its memory budget; once one has, no new replication
    /// starts, so this names the first and the run's reports are not written.
    public var memoryOverruns: [Replication] { replications.filter { $0.result.memoryOverrun != nil } }

    /// Events handled across all replications.
    public var events: UInt64 { replications.reduce(0) { $0 + $1.result.events } }

    /// The shard run, or nil for the whole scenario.
    public let shard: Shard?

    /// Runs `scenario` with up to `jobs` replications at once; `progress` receives (done fraction, events so far,
    /// wall seconds) about twice a second. With a `shard`, only the replications that shard owns are run.
    public static func run(
        _ scenario: Scenario,
        jobs requestedJobs: Int,
        maxMemory: Int = Int.max,
        shard: Shard? = nil,
        progress: (@Sendable (Double, UInt64, Double) -> Void)? = nil
    ) -> Experiment {
        var work: [(unit: Int, variant: Int, seed: UInt64)] = []
        for v in scenario.variants.indices {
            for i in 0..<scenario.seeds {
                let unit = v * scenario.seeds + i
                if let shard, !shard.owns(unit: unit) { continue }
                work.append((unit, v, scenario.seed &+ UInt64(i)))
            }
        }
        let jobs = max(1, min(requestedJobs, max(work.count, 1)))
        let results = Mutex<[Simulation.Result?]>(Array(repeating: nil, count: work.count))
        let next = Atomic<Int>(0)
        let simulatedDone = Mutex<[Int64]>(Array(repeating: 0, count: work.count))
        let eventsDone = Atomic<UInt64>(0)
        let total = work.reduce(0.0) { $0 + Double(scenario.variants[$1.variant].spec.duration.nanoseconds) }
        let finished = Atomic<Bool>(false)
        let overrun = Atomic<Bool>(false)
        let start = DispatchTime.now().uptimeNanoseconds
        let elapsed: @Sendable () -> Double = { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

        let reporter: Thread?
        if let progress {
            let thread = Thread {
                while !finished.load(ordering: .acquiring) {
                    Thread.sleep(forTimeInterval: 0.5)
                    if finished.load(ordering: .acquiring) { break }
                    let done = simulatedDone.withLock { $0.reduce(0) { $0 + Double($1) } }
                    progress(min(done / max(total, 1), 1), eventsDone.load(ordering: .relaxed), elapsed())
                }
            }
            thread.start()
            reporter = thread
        } else {
            reporter = nil
        }

        let workItems = work
        DispatchQueue.concurrentPerform(iterations: jobs) { _ in
            while true {
                let index = next.add(1, ordering: .relaxed).oldValue
                guard index < workItems.count, !overrun.load(ordering: .relaxed) else { return }
                let item = workItems[index]
                let variant = scenario.variants[item.variant]
                var simulation = Simulation(spec: variant.spec, seed: item.seed, variant: variant.name)
                // Replications run `jobs` at a time: each may use its share of the budget.
                simulation.memoryBudget = maxMemory / jobs
                if progress != nil {
                    simulation.progress = { now in
                        simulatedDone.withLock { $0[index] = now.nanoseconds }
                        eventsDone.add(65_536, ordering: .relaxed)
                    }
                }
                let result = simulation.run()
                if result.memoryOverrun != nil { overrun.store(true, ordering: .relaxed) }
                simulatedDone.withLock { $0[index] = variant.spec.duration.nanoseconds }
                results.withLock { $0[index] = result }
            }
        }
        finished.store(true, ordering: .releasing)
        let wall = elapsed()
        reporter?.cancel()

        let collected = results.withLock { $0 }
        var replications: [Replication] = []
        for (i, item) in work.enumerated() {
            // After a memory overrun, replications that never started have no result.
            guard let result = collected[i] else { continue }
            replications.append(
                Replication(
                    unit: item.unit,
                    variant: scenario.variants[item.variant].name,
                    seed: item.seed,
                    result: result
                )
            )
        }
        let samples = replications.map { replication in
            (replication.variant, comparisonValues(replication.result.summary))
        }
        return Experiment(
            scenario: scenario,
            replications: replications,
            comparison: compare(variants: scenario.variants.map(\.name), rankBy: scenario.rankBy, samples: samples),
            wallSeconds: wall,
            jobs: jobs,
            shard: shard
        )
    }

    /// A replication's values of the ``comparisonMetrics`` (a metric without a value is left out).
    static func comparisonValues(_ summary: MetricRow) -> [String: Double] {
        var values: [String: Double] = [:]
        for metric in comparisonMetrics { values[metric] = summary.value(of: metric) }
        return values
    }

    /// Means and confidence intervals per variant, ranked by `rankBy` (then by p99, then file order).
    ///
    /// `samples` holds one replication's metric values each, in (variant, seed) order: a variant's values are
    /// summed in that order, so a merge of shards ranks exactly as the run it splits.
    static func compare(
        variants: [String],
        rankBy: String,
        samples: [(variant: String, metrics: [String: Double])]
    ) -> [VariantComparison] {
        var rows: [VariantComparison] = []
        for variant in variants {
            let mine = samples.filter { $0.variant == variant }
            var metrics: [String: (mean: Double?, halfWidth: Double?)] = [:]
            for metric in comparisonMetrics {
                metrics[metric] = Statistics.meanWithCI95(mine.compactMap { $0.metrics[metric] })
            }
            rows.append(VariantComparison(variant: variant, rank: 0, seeds: mine.count, metrics: metrics))
        }
        let higherIsBetter = Scenario.rankMetrics.first { $0.name == rankBy }?.higherIsBetter ?? true
        func key(_ row: VariantComparison, _ metric: String, _ higher: Bool) -> Double {
            guard let value = row.metrics[metric]?.mean ?? nil else { return .infinity }
            return higher ? -value : value
        }
        let order = rows.indices.sorted { a, b in
            let ka = key(rows[a], rankBy, higherIsBetter)
            let kb = key(rows[b], rankBy, higherIsBetter)
            if ka != kb { return ka < kb }
            let pa = key(rows[a], "p99_ms", false)
            let pb = key(rows[b], "p99_ms", false)
            if pa != pb { return pa < pb }
            return a < b
        }
        for (rank, index) in order.enumerated() { rows[index].rank = rank + 1 }
        return order.map { rows[$0] }
    }
}
