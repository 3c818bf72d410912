//===----------------------------------------------------------------------===//
// meshsim — command line
//===----------------------------------------------------------------------===//

import Foundation
import MeshModel
import SimCore
import Spec

/// Memory sizes on the command line (`--max-memory`), and what a run says when it passes its budget.
enum MemorySize {
    /// The default budget: a quarter of the machine's physical memory (the model can pass its budget by up to twice
    /// before the next check sees it, as its arrays grow by doubling).
    static var defaultBudget: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory / 4) }

    /// Parses `512MiB`, `4GiB`, `2G`, `300MB` (powers of 1,024 and 1,000), from 16 MiB to 1 PiB.
    static func parse(_ text: String) -> Int? {
        let units: [(suffix: String, bytes: Double)] = [
            ("KiB", 1_024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("TiB", 1_099_511_627_776),
            ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("K", 1_024), ("M", 1_048_576),
            ("G", 1_073_741_824), ("T", 1_099_511_627_776),
        ]
        for unit in units where text.hasSuffix(unit.suffix) {
            guard let number = Double(text.dropLast(unit.suffix.count)), number.isFinite, number > 0 else {
                return nil
            }
            let bytes = number * unit.bytes
            guard bytes >= 16 * 1_048_576, bytes <= 1_125_899_906_842_624 else { return nil }
            return Int(bytes)
        }
        return nil
    }

    /// The message for a replication that passed its memory budget: where, when, and what to change.
    static func message(_ overrun: Simulation.MemoryOverrun, path: String, variant: String, seed: UInt64) -> String {
        let mib = { (bytes: Int) in String(format: "%.0f MiB", Double(bytes) / 1_048_576) }
        var text =
            "\(path): error: variant \(variant), seed \(seed): the model passed its memory budget "
            + "(\(mib(overrun.bytes)) of \(mib(overrun.budget)) per replication) at simulated time "
            + String(format: "%.3f s", overrun.at.seconds)
        if !overrun.service.isEmpty {
            text += ": service '\(overrun.service)' holds \(overrun.queued) queued requests"
            if overrun.unboundedQueue {
                text +=
                    " in an unbounded queue. Give it a bounded queue (e.g. queue: 1000 under "
                    + "services.\(overrun.service)), lower the offered load, or raise --max-memory"
            } else {
                text += ". Lower the offered load, shorten timeouts, or raise --max-memory"
            }
        }
        return text + ". No reports were written."
    }
}
