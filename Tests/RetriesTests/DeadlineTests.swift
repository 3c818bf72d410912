//===----------------------------------------------------------------------===//
// meshsim — RetriesTests
//===----------------------------------------------------------------------===//

import Retries
import SimCore
import Testing

@Suite("Deadline")
struct DeadlineTests {
    @Test("a child call gets min(per-try timeout, deadline − now); an expired deadline fails fast")
    func arithmetic() {
        let deadline = Deadline.after(.seconds(1), from: .zero)
        #expect(deadline.instant == at(ms: 1_000))
        #expect(deadline.remaining(at: at(ms: 200)) == ms(800))
        #expect(deadline.budget(perTryTimeout: ms(300), at: at(ms: 200)) == ms(300))
        #expect(deadline.budget(perTryTimeout: nil, at: at(ms: 200)) == ms(800))
        #expect(deadline.budget(perTryTimeout: ms(300), at: at(ms: 900)) == ms(100))
        #expect(deadline.budget(perTryTimeout: ms(300), at: at(ms: 1_000)) == nil)
        #expect(deadline.budget(perTryTimeout: nil, at: at(ms: 1_200)) == nil)
        #expect(deadline.isExpired(at: at(ms: 1_000)) && !deadline.isExpired(at: at(ms: 999)))
        #expect(deadline.remaining(at: at(ms: 1_200)) == .zero)
    }

    @Test("deadlines propagate down a call graph: each hop spends from the same budget")
    func propagation() throws {
        let root = Deadline.after(.seconds(1), from: .zero)
        // A calls B at 100 ms with B's per-try timeout of 2 s: B inherits A's deadline.
        let b = try #require(root.child(perTryTimeout: .seconds(2), at: at(ms: 100)))
        #expect(b == root)
        // B calls C at 300 ms with a 250 ms per-try timeout: C's deadline is 550 ms.
        let c = try #require(b.child(perTryTimeout: ms(250), at: at(ms: 300)))
        #expect(c.instant == at(ms: 550) && c < b)
        // C's retry at 600 ms is already past its deadline: fail fast, send nothing.
        #expect(c.child(perTryTimeout: ms(250), at: at(ms: 600)) == nil)
        // B's own retry at 950 ms gets the 50 ms left.
        #expect(b.budget(perTryTimeout: ms(250), at: at(ms: 950)) == ms(50))
    }

    @Test("no deadline leaves the per-try timeout in charge")
    func none() {
        #expect(Deadline.none.budget(perTryTimeout: ms(300), at: at(ms: 5_000)) == ms(300))
        #expect(Deadline.none.child(perTryTimeout: ms(300), at: at(ms: 5_000)) == Deadline(at(ms: 5_300)))
        #expect(!Deadline.none.isExpired(at: SimInstant(nanoseconds: Int64.max / 4)))
        #expect(Deadline.after(ms(10), from: .zero).budget(perTryTimeout: ms(-5), at: .zero) == .zero)
    }
}
