//===----------------------------------------------------------------------===//
// meshsim — RetriesTests
//===----------------------------------------------------------------------===//

import Retries
import SimCore
import Testing

@Suite("Hedging")
struct HedgingTests {
    static func policy(
        attempts: Int = 3,
        delay: Int64 = 100,
        nonFatal: [GRPCStatusCode] = [.unavailable]
    ) throws -> HedgingPolicy {
        try HedgingPolicy(
            maxAttempts: attempts,
            hedgingDelay: ms(delay),
            nonFatalStatusCodes: GRPCStatusCodes(nonFatal)
        )
    }

    @Test("a hedge every hedgingDelay up to maxAttempts; the first OK wins and the others are cancelled")
    func timeline() throws {
        var rpc = HedgingStateMachine(policy: try Self.policy(), startedAt: at(ms: 1_000))
        #expect(rpc.attemptsSent == 1 && rpc.outstanding == AttemptSet([0]))
        #expect(rpc.nextHedgeAt == at(ms: 1_100))
        #expect(rpc.poll(at: at(ms: 1_050)) == .wait(until: at(ms: 1_100)))
        #expect(rpc.poll(at: at(ms: 1_100)) == .send(attempt: 1))
        #expect(rpc.poll(at: at(ms: 1_100)) == .wait(until: at(ms: 1_200)))
        #expect(rpc.poll(at: at(ms: 1_200)) == .send(attempt: 2))
        #expect(rpc.poll(at: at(ms: 1_300)) == .wait(until: nil))
        #expect(rpc.attemptSucceeded(1, at: at(ms: 1_250)) == .succeeded(winner: 1, cancel: AttemptSet([0, 2])))
        #expect(rpc.isFinished && rpc.outstanding.isEmpty)
        // Late answers from cancelled attempts change nothing.
        #expect(rpc.attemptSucceeded(0, at: at(ms: 1_260)) == .wait(until: nil))
        #expect(rpc.attemptFailed(2, status: .internal, at: at(ms: 1_270)) == .wait(until: nil))
    }

    @Test("the original winning first cancels the hedges in flight")
    func originalWins() throws {
        var rpc = HedgingStateMachine(policy: try Self.policy(attempts: 5), startedAt: .zero)
        #expect(rpc.poll(at: at(ms: 100)) == .send(attempt: 1))
        #expect(rpc.poll(at: at(ms: 200)) == .send(attempt: 2))
        #expect(rpc.attemptSucceeded(0, at: at(ms: 250)) == .succeeded(winner: 0, cancel: AttemptSet([1, 2])))
        #expect(rpc.poll(at: at(ms: 300)) == .wait(until: nil))
        #expect(rpc.attemptsSent == 3)
    }

    @Test("a non-fatal status sends the next hedge at once; later hedges follow hedgingDelay from then")
    func nonFatal() throws {
        var rpc = HedgingStateMachine(policy: try Self.policy(), startedAt: .zero)
        #expect(rpc.attemptFailed(0, status: .unavailable, at: at(ms: 30)) == .send(attempt: 1))
        #expect(rpc.nextHedgeAt == at(ms: 130))
        #expect(rpc.poll(at: at(ms: 100)) == .wait(until: at(ms: 130)))
        #expect(rpc.poll(at: at(ms: 130)) == .send(attempt: 2))
        #expect(rpc.attemptFailed(1, status: .unavailable, at: at(ms: 150)) == .wait(until: nil))
        // Every hedge failed: the RPC fails, with nothing left to cancel and no retry.
        #expect(rpc.attemptFailed(2, status: .unavailable, at: at(ms: 160)) == .failed(cancel: AttemptSet()))
        #expect(rpc.isFinished)
    }

    @Test("a fatal status cancels every outstanding attempt")
    func fatal() throws {
        var rpc = HedgingStateMachine(policy: try Self.policy(attempts: 4), startedAt: .zero)
        _ = rpc.poll(at: at(ms: 100))
        _ = rpc.poll(at: at(ms: 200))
        #expect(
            rpc.attemptFailed(1, status: .permissionDenied, at: at(ms: 210)) == .failed(cancel: AttemptSet([0, 2]))
        )
        #expect(rpc.poll(at: at(ms: 300)) == .wait(until: nil))
        var noCodes = HedgingStateMachine(policy: try Self.policy(nonFatal: []), startedAt: .zero)
        #expect(noCodes.attemptFailed(0, status: .unavailable, at: at(ms: 10)) == .failed(cancel: AttemptSet()))
    }

    @Test("OK reported as a status is a success")
    func okStatus() throws {
        var rpc = HedgingStateMachine(policy: try Self.policy(), startedAt: .zero)
        _ = rpc.poll(at: at(ms: 100))
        #expect(rpc.attemptFailed(1, status: .ok, at: at(ms: 120)) == .succeeded(winner: 1, cancel: AttemptSet([0])))
    }

    @Test("pushback of n ms puts the next hedge at n ms; 'do not retry' pushback stops hedging")
    func pushback() throws {
        var delayed = HedgingStateMachine(policy: try Self.policy(), startedAt: .zero)
        let action = delayed.attemptFailed(0, status: .unavailable, pushback: .retryAfter(ms(500)), at: at(ms: 30))
        #expect(action == .wait(until: at(ms: 530)))
        #expect(delayed.poll(at: at(ms: 529)) == .wait(until: at(ms: 530)))
        #expect(delayed.poll(at: at(ms: 530)) == .send(attempt: 1))
        #expect(delayed.nextHedgeAt == at(ms: 630))

        var stopped = HedgingStateMachine(policy: try Self.policy(), startedAt: .zero)
        _ = stopped.poll(at: at(ms: 100))
        #expect(stopped.attemptFailed(0, status: .unavailable, pushback: .stop, at: at(ms: 120)) == .wait(until: nil))
        #expect(stopped.hedgingStopped)
        #expect(stopped.poll(at: at(ms: 200)) == .wait(until: nil))
        // A later non-fatal failure does not restart hedging.
        #expect(stopped.attemptFailed(1, status: .unavailable, at: at(ms: 250)) == .failed(cancel: AttemptSet()))
        #expect(stopped.attemptsSent == 2)
    }

    @Test("a throttled hedge stops hedging; attempts already sent go on")
    func throttled() throws {
        var throttle = try GRPCRetryThrottle(maxTokens: 2, tokenRatio: 0.1)
        var rpc = HedgingStateMachine(policy: try Self.policy(attempts: 5), startedAt: .zero)
        throttle.attemptFailed(at: .zero)
        let hedgeAllowed = throttle.tryRetry(at: at(ms: 100))
        #expect(!hedgeAllowed)
        #expect(rpc.stopHedging(at: at(ms: 100)) == .wait(until: nil))
        #expect(rpc.poll(at: at(ms: 200)) == .wait(until: nil))
        #expect(rpc.attemptFailed(0, status: .unavailable, at: at(ms: 300)) == .failed(cancel: AttemptSet()))
        #expect(rpc.attemptsSent == 1)
    }

    @Test("a zero delay sends every attempt at once; maxAttempts is capped at 5")
    func zeroDelay() throws {
        let policy = try HedgingPolicy(maxAttempts: 9, nonFatalStatusCodes: GRPCStatusCodes(.unavailable))
        #expect(policy.maxAttempts == 5 && policy.hedgingDelay == .zero)
        var rpc = HedgingStateMachine(policy: policy, startedAt: at(ms: 7))
        var sent: [Int] = []
        while case .send(let attempt) = rpc.poll(at: at(ms: 7)) { sent.append(attempt) }
        #expect(sent == [1, 2, 3, 4])
        #expect(Array(rpc.outstanding) == [0, 1, 2, 3, 4] && rpc.outstanding.count == 5)
        #expect(rpc.attemptSucceeded(3, at: at(ms: 20)) == .succeeded(winner: 3, cancel: AttemptSet([0, 1, 2, 4])))
        #expect(try HedgingPolicy(maxAttempts: 9, maxCallAttempts: 7).maxAttempts == 7)
    }

    @Test("attempt sets iterate in order without holding out-of-range numbers")
    func attemptSet() {
        var set = AttemptSet([4, 0, 31, 2, 40, -1])
        #expect(Array(set) == [0, 2, 4, 31])
        set.remove(2)
        set.remove(99)
        #expect(Array(set) == [0, 4, 31] && set.contains(31) && !set.contains(2) && !set.contains(-3))
    }

    @Test("impossible parameters throw PolicyParameterError naming the parameter")
    func badParameters() {
        let attempts = #expect(throws: PolicyParameterError.self) { try HedgingPolicy(maxAttempts: 1) }
        #expect(attempts?.parameter == "max_attempts")
        let delay = #expect(throws: PolicyParameterError.self) {
            try HedgingPolicy(maxAttempts: 3, hedgingDelay: ms(-5))
        }
        #expect(delay?.parameter == "hedging_delay")
        for cap in [0, 33] {
            let error = #expect(throws: PolicyParameterError.self) {
                try HedgingPolicy(maxAttempts: 3, maxCallAttempts: cap)
            }
            #expect(error?.parameter == "max_call_attempts")
        }
    }
}
