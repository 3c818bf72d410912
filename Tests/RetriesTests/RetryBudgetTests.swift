//===----------------------------------------------------------------------===//
// meshsim — RetriesTests
//===----------------------------------------------------------------------===//

import Retries
import SimCore
import Testing

@Suite("EnvoyRetryBudget")
struct EnvoyRetryBudgetTests {
    /// Starts `count` requests at time zero.
    static func budget(active count: Int, percent: Double = 20, minimum: Int = 3) throws -> EnvoyRetryBudget {
        var budget = try EnvoyRetryBudget(budgetPercent: percent, minRetryConcurrency: minimum)
        for _ in 0..<count { budget.requestStarted(at: .zero) }
        return budget
    }

    /// Admits retries until one is refused; returns how many were admitted.
    static func admitted(_ budget: inout EnvoyRetryBudget) -> Int {
        var n = 0
        while budget.tryRetry(at: .zero) { n += 1 }
        return n
    }

    @Test("PR #9069's example: 20 % with a minimum of 3 allows 5 retries at 25 active requests and 3 at 2")
    func worked() throws {
        var at25 = try Self.budget(active: 25)
        #expect(at25.maxActiveRetries == 5)
        #expect(Self.admitted(&at25) == 5)
        var at2 = try Self.budget(active: 2)
        #expect(Self.admitted(&at2) == 3)
        var idle = try Self.budget(active: 0)
        #expect(Self.admitted(&idle) == 3)
        var at29 = try Self.budget(active: 29)
        #expect(Self.admitted(&at29) == 5)
        var at100 = try Self.budget(active: 100)
        #expect(Self.admitted(&at100) == 20)
        var half = try Self.budget(active: 10, percent: 50, minimum: 0)
        #expect(Self.admitted(&half) == 5)
        var none = try Self.budget(active: 10, percent: 0, minimum: 0)
        #expect(Self.admitted(&none) == 0)
    }

    @Test("a finished retry frees its slot; finished requests shrink the limit")
    func accounting() throws {
        var budget = try Self.budget(active: 25)
        #expect(Self.admitted(&budget) == 5)
        budget.retryFinished(at: .zero)
        #expect(budget.activeRetries == 4)
        let freed = budget.tryRetry(at: .zero)
        let beyond = budget.tryRetry(at: .zero)
        #expect(freed && !beyond)
        for _ in 0..<10 { budget.requestFinished(success: false, at: .zero) }
        #expect(budget.activeRequests == 15 && budget.maxActiveRetries == 3)
        for _ in 0..<5 { budget.retryFinished(at: .zero) }
        #expect(Self.admitted(&budget) == 3)
        // Extra finishes never drive the counts below zero.
        for _ in 0..<50 {
            budget.retryFinished(at: .zero)
            budget.requestFinished(success: true, at: .zero)
        }
        #expect(budget.activeRetries == 0 && budget.activeRequests == 0)
    }

    @Test("over 1,000 seeds, active retries never exceed max(3, ⌊20 % of active requests⌋)")
    func property() throws {
        for seed in 0..<1_000 as Range<UInt64> {
            var rng = SplitMix64(seed: seed)
            var budget = try EnvoyRetryBudget()
            var requests = 0
            var retries = 0
            for step in 0..<300 {
                let now = SimInstant(nanoseconds: Int64(step))
                switch uniformBelow(4, using: &rng) {
                case 0:
                    budget.requestStarted(at: now)
                    requests += 1
                case 1 where requests > 0:
                    budget.requestFinished(success: false, at: now)
                    requests -= 1
                case 2 where retries > 0:
                    budget.retryFinished(at: now)
                    retries -= 1
                default:
                    let limit = max(3, requests / 5)
                    let admitted = budget.tryRetry(at: now)
                    #expect(admitted == (retries < limit))
                    if admitted {
                        retries += 1
                        #expect(retries <= limit)
                    }
                }
                #expect(budget.activeRetries == retries && budget.activeRequests == requests)
            }
        }
    }

    @Test("impossible parameters throw PolicyParameterError naming the parameter")
    func badParameters() {
        for percent in [-1, 100.5, .nan] {
            let error = #expect(throws: PolicyParameterError.self) { try EnvoyRetryBudget(budgetPercent: percent) }
            #expect(error?.parameter == "budget_percent")
        }
        let error = #expect(throws: PolicyParameterError.self) { try EnvoyRetryBudget(minRetryConcurrency: -1) }
        #expect(error?.parameter == "min_retry_concurrency")
        #expect((try? EnvoyRetryBudget(budgetPercent: 100, minRetryConcurrency: 0)) != nil)
    }
}

@Suite("FinagleRetryBudget")
struct FinagleRetryBudgetTests {
    static let second: Int64 = 1_000_000_000

    @Test("defaults: deposits of 1000, withdrawals of 5000, a reserve of 500,000 (100 retries)")
    func defaults() throws {
        var budget = try FinagleRetryBudget()
        #expect(budget.ttl == .seconds(10) && budget.minRetriesPerSecond == 10 && budget.percentCanRetry == 0.2)
        #expect(budget.depositAmount == 1_000 && budget.withdrawalAmount == 5_000 && budget.reserve == 500_000)
        #expect(budget.balance(at: .zero) == 100)
    }

    @Test("with no requests, 10/s × 10 s = 100 retries per window; the reserve is a floor, not a credit")
    func reserveOnly() throws {
        var budget = try FinagleRetryBudget()
        var admitted = 0
        while budget.tryRetry(at: .zero) { admitted += 1 }
        #expect(admitted == 100)
        let later = budget.tryRetry(at: at(ms: 5_000))
        let lastMoment = budget.tryRetry(at: at(ms: 9_999))
        #expect(!later && !lastMoment)
        // Once the withdrawals have left the window, the same 100 are available again, and no more.
        #expect(budget.balance(at: at(ms: 10_000)) == 100)
        #expect(budget.balance(at: at(ms: 600_000)) == 100)
    }

    @Test("each request adds a fifth of a retry: 50 requests and the reserve allow 110")
    func deposits() throws {
        var budget = try FinagleRetryBudget()
        for _ in 0..<50 { budget.requestStarted(at: .zero) }
        #expect(budget.balance(at: .zero) == 110)
        var admitted = 0
        while budget.tryRetry(at: at(ms: 1)) { admitted += 1 }
        #expect(admitted == 110)
        // Deposits expire with the window too.
        #expect(budget.balance(at: at(ms: 10_000)) == 100)
    }

    @Test("at 100 requests/s each wanting a retry, 20 % + 10/s are allowed: 300 per 10 s")
    func steadyRate() throws {
        var budget = try FinagleRetryBudget()
        var grants: [Int64] = []
        for i in 0..<6_000 as Range<Int64> {
            let now = SimInstant(nanoseconds: i * 10_000_000)
            budget.requestStarted(at: now)
            if budget.tryRetry(at: now) { grants.append(now.nanoseconds) }
        }
        // 20 % of 1,000 requests plus 10/s × 10 s, in every 10 s window.
        let perWindow = (0..<6).map { window in grants.filter { $0 / (10 * Self.second) == window }.count }
        #expect(perWindow == [300, 300, 300, 300, 300, 300])
    }

    @Test("percentCanRetry 0: each retry costs 1 and requests earn nothing; with no minimum, nothing is allowed")
    func specialCases() throws {
        var minimumOnly = try FinagleRetryBudget(percentCanRetry: 0)
        #expect(minimumOnly.withdrawalAmount == 1 && minimumOnly.depositAmount == 0 && minimumOnly.reserve == 100)
        for _ in 0..<1_000 { minimumOnly.requestStarted(at: .zero) }
        #expect(minimumOnly.balance(at: .zero) == 100)
        var empty = try FinagleRetryBudget(minRetriesPerSecond: 0, percentCanRetry: 0)
        for _ in 0..<1_000 { empty.requestStarted(at: .zero) }
        let fromEmpty = empty.tryRetry(at: .zero)
        #expect(!fromEmpty)
        var short = try FinagleRetryBudget(ttl: .seconds(1), minRetriesPerSecond: 5, percentCanRetry: 0.5)
        #expect(short.withdrawalAmount == 2_000 && short.reserve == 10_000)
        for _ in 0..<4 { short.requestStarted(at: .zero) }
        #expect(short.balance(at: .zero) == 7)
    }

    @Test("over 1,000 seeds, at each grant, retries of the last 9 s ≤ 20 % of the last 10 s's requests + 100")
    func property() throws {
        for seed in 0..<1_000 as Range<UInt64> {
            var rng = SplitMix64(seed: seed)
            var budget = try FinagleRetryBudget()
            var deposits: [Int64] = []
            var grants: [Int64] = []
            var firstRecentDeposit = 0
            var firstRecentGrant = 0
            var now: Int64 = 0
            for _ in 0..<400 {
                now += Int64(uniformBelow(200_000_000, using: &rng))
                let instant = SimInstant(nanoseconds: now)
                if uniformBelow(3, using: &rng) == 0 {
                    budget.requestStarted(at: instant)
                    deposits.append(now)
                } else if budget.tryRetry(at: instant) {
                    grants.append(now)
                    #expect(budget.count(at: instant) >= 0)
                    while grants[firstRecentGrant] < now - 9 * Self.second { firstRecentGrant += 1 }
                    while firstRecentDeposit < deposits.count && deposits[firstRecentDeposit] < now - 10 * Self.second {
                        firstRecentDeposit += 1
                    }
                    let recentGrants = grants.count - firstRecentGrant
                    let recentDeposits = deposits.count - firstRecentDeposit
                    #expect(recentGrants * 5_000 <= recentDeposits * 1_000 + 500_000)
                }
            }
        }
    }

    @Test("impossible parameters throw PolicyParameterError naming the parameter")
    func badParameters() {
        for ttl in [ms(999), .seconds(61), ms(-1)] {
            let error = #expect(throws: PolicyParameterError.self) { try FinagleRetryBudget(ttl: ttl) }
            #expect(error?.parameter == "ttl")
        }
        let minimum = #expect(throws: PolicyParameterError.self) { try FinagleRetryBudget(minRetriesPerSecond: -1) }
        #expect(minimum?.parameter == "min_retries_per_sec")
        for percent in [-0.1, 1_000.5, .nan] {
            let error = #expect(throws: PolicyParameterError.self) { try FinagleRetryBudget(percentCanRetry: percent) }
            #expect(error?.parameter == "percent_can_retry")
        }
    }
}

@Suite("GRPCRetryThrottle")
struct GRPCRetryThrottleTests {
    @Test("A6's example (10 tokens, ratio 0.1): retries stop at ≤ 5 tokens and resume as successes add 0.1 each")
    func worked() throws {
        var throttle = try GRPCRetryThrottle(maxTokens: 10, tokenRatio: 0.1)
        #expect(throttle.tokens == 10 && throttle.tryRetry(at: .zero))
        for _ in 0..<4 { throttle.attemptFailed(at: .zero) }
        #expect(throttle.tokens == 6 && throttle.tryRetry(at: .zero))
        throttle.attemptFailed(at: .zero)
        #expect(throttle.tokens == 5 && !throttle.tryRetry(at: .zero) && throttle.isThrottling)
        throttle.requestFinished(success: true, at: .zero)
        #expect(throttle.tokens == 5.1 && throttle.tryRetry(at: .zero))
        throttle.attemptFailed(at: .zero)
        #expect(throttle.tokens == 4.1 && !throttle.tryRetry(at: .zero))
        for _ in 0..<9 { throttle.requestFinished(success: true, at: .zero) }
        #expect(throttle.tokens == 5 && !throttle.tryRetry(at: .zero))
        throttle.requestFinished(success: true, at: .zero)
        #expect(throttle.tokens == 5.1 && throttle.tryRetry(at: .zero))
        // Failed requests and retries add nothing; asking does not take tokens.
        throttle.requestFinished(success: false, at: .zero)
        throttle.retryFinished(at: .zero)
        throttle.requestStarted(at: .zero)
        _ = throttle.tryRetry(at: .zero)
        #expect(throttle.tokens == 5.1)
    }

    @Test("tokens stay within [0, maxTokens]; the ratio keeps 3 decimals")
    func bounds() throws {
        var throttle = try GRPCRetryThrottle(maxTokens: 10, tokenRatio: 0.1)
        for _ in 0..<25 { throttle.attemptFailed(at: .zero) }
        #expect(throttle.tokens == 0)
        for _ in 0..<200 { throttle.requestFinished(success: true, at: .zero) }
        #expect(throttle.tokens == 10)
        #expect(try GRPCRetryThrottle(maxTokens: 3, tokenRatio: 0.1234).tokenRatio == 0.123)
        // With an odd maxTokens the threshold is 1.5: 2 tokens allow retries, 1 does not.
        var three = try GRPCRetryThrottle(maxTokens: 3, tokenRatio: 1)
        three.attemptFailed(at: .zero)
        #expect(three.tokens == 2 && !three.isThrottling)
        three.attemptFailed(at: .zero)
        #expect(three.tokens == 1 && three.isThrottling)
    }

    @Test("over 1,000 seeds, a retry is allowed exactly when a Double model's token count is above half")
    func property() throws {
        let ratios = [0.1, 0.25, 0.5, 1, 0.001]
        for seed in 0..<1_000 as Range<UInt64> {
            var rng = SplitMix64(seed: seed)
            let maxTokens = Double(1 + uniformBelow(20, using: &rng))
            let ratio = ratios[Int(uniformBelow(UInt64(ratios.count), using: &rng))]
            var throttle = try GRPCRetryThrottle(maxTokens: maxTokens, tokenRatio: ratio)
            var model = maxTokens
            for _ in 0..<200 {
                if uniformBelow(2, using: &rng) == 0 {
                    throttle.attemptFailed(at: .zero)
                    model = max(0, model - 1)
                } else {
                    throttle.requestFinished(success: true, at: .zero)
                    model = min(maxTokens, model + ratio)
                }
                #expect(abs(throttle.tokens - model) < 1e-6)
                if abs(model - maxTokens / 2) > 1e-6 {
                    #expect(throttle.tryRetry(at: .zero) == (model > maxTokens / 2))
                }
            }
        }
    }

    @Test("impossible parameters throw PolicyParameterError naming the parameter")
    func badParameters() {
        for maxTokens in [0, -1, 1_000.5, .nan] {
            let error = #expect(throws: PolicyParameterError.self) {
                try GRPCRetryThrottle(maxTokens: maxTokens, tokenRatio: 0.1)
            }
            #expect(error?.parameter == "max_tokens")
        }
        for ratio in [0, -0.1, 0.0004, .nan, .infinity] {
            let error = #expect(throws: PolicyParameterError.self) {
                try GRPCRetryThrottle(maxTokens: 10, tokenRatio: ratio)
            }
            #expect(error?.parameter == "token_ratio")
        }
    }
}

@Suite("RetryBudget")
struct RetryBudgetTests {
    /// 1,000 requests over 10 s to a dead upstream: each attempt fails, each request wants one retry.
    static func storm(_ budget: inout some RetryBudget) -> Int {
        var retries = 0
        for i in 0..<1_000 as Range<Int64> {
            let now = SimInstant(nanoseconds: i * 10_000_000)
            budget.requestStarted(at: now)
            budget.attemptFailed(at: now)
            if budget.tryRetry(at: now) {
                retries += 1
                budget.attemptFailed(at: now)
                budget.retryFinished(at: now)
            }
            budget.requestFinished(success: false, at: now)
        }
        return retries
    }

    @Test("one call sequence drives all three: a dead upstream gets 1,000, 300 and 2 retries")
    func storm() throws {
        var envoy = try EnvoyRetryBudget()
        var finagle = try FinagleRetryBudget()
        var grpc = try GRPCRetryThrottle(maxTokens: 10, tokenRatio: 0.1)
        // Envoy's limit is on concurrency, and these retries end at once; Finagle allows 20 % + 10/s × 10 s;
        // gRPC stops once failures have drained half its tokens.
        #expect(Self.storm(&envoy) == 1_000)
        #expect(Self.storm(&finagle) == 300)
        #expect(Self.storm(&grpc) == 2)
    }
}
