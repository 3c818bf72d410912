//===----------------------------------------------------------------------===//
// meshsim — Balancers
//===----------------------------------------------------------------------===//

/// Earliest-deadline-first scheduling of weighted picks, as Envoy's `edf_scheduler.h` does it.
///
/// Each entry has `deadline = current_time + 1/weight`; a pick pops the earliest deadline (ties first-in first-out
/// by an insertion counter), sets `current_time` to it, and re-adds the entry with the weight recomputed at that
/// moment (least request and slow start change weights). `reset(count:picks:weight:)` starts the scheduler as if
/// `picks` picks had already happened, in closed form, so that callers start at different rotation points
/// (Envoy `createWithPicks`; algorithms.md §1.1). Storage is sized at reset; picks do not allocate.
struct EDFScheduler: Sendable {
    struct Entry: Sendable {
        var deadline: Double
        var order: UInt64
        var position: Int32

        func precedes(_ other: Entry) -> Bool {
            deadline < other.deadline || (deadline == other.deadline && order < other.order)
        }
    }

    private(set) var heap: [Entry] = []
    private var currentTime = 0.0
    private var order: UInt64 = 0

    /// Envoy adds this to every weight so that a zero weight cannot give an infinite deadline.
    static let epsilon = 1e-13

    /// Rebuilds the schedule for `count` entries as if `picks` picks had been made.
    mutating func reset(count: Int, picks: UInt64, weight: (Int) -> Double) {
        heap.removeAll(keepingCapacity: true)
        heap.reserveCapacity(count)
        order = 0
        var total = 0.0
        for i in 0..<count { total += weight(i) + Self.epsilon }
        // After `picks` picks, entry i has been picked floor(w_i · picks / Σw) times; the clock stands at the
        // latest of those picks.
        var counts = [Double](repeating: 0, count: count)
        currentTime = 0
        for i in 0..<count {
            let w = weight(i) + Self.epsilon
            counts[i] = (w * Double(picks) / total).rounded(.down)
            currentTime = max(currentTime, counts[i] / w)
        }
        for i in 0..<count {
            let w = weight(i) + Self.epsilon
            push(Entry(deadline: max((counts[i] + 1) / w, currentTime), order: order, position: Int32(i)))
            order &+= 1
        }
    }

    /// Pops the entry with the earliest deadline, re-adds it with its current weight, and returns its position.
    ///
    /// - Complexity: O(log n), no allocation.
    mutating func pickAndAdd(weight: (Int) -> Double) -> Int? {
        guard !heap.isEmpty else { return nil }
        var top = heap[0]
        currentTime = top.deadline
        top.deadline = currentTime + 1 / (weight(Int(top.position)) + Self.epsilon)
        top.order = order
        order &+= 1
        heap[0] = top
        siftDown(0)
        return Int(top.position)
    }

    private mutating func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if !heap[child].precedes(heap[parent]) { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        let count = heap.count
        while true {
            var child = 2 * parent + 1
            if child >= count { return }
            if child + 1 < count && heap[child + 1].precedes(heap[child]) { child += 1 }
            if !heap[child].precedes(heap[parent]) { return }
            heap.swapAt(child, parent)
            parent = child
        }
    }
}
