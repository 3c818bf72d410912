//===----------------------------------------------------------------------===//
// meshsim — Spec
//===----------------------------------------------------------------------===//

public import Balancers
public import Breakers
public import Limiters
public import Retries
import SimCore

// The policy boxes built from their specs: the validated spec is the one place a policy's parameters come from.

extension BalancerBox {
    /// Builds the balancer of `spec` for a service of `endpointCapacity` replicas (parameters were validated by the
    /// scenario loader; a spec built in code that is invalid falls back to the defaults).
    public init(_ spec: BalancerSpec, endpointCapacity: Int) {
        let slowStart = spec.slowStart.flatMap {
            try? SlowStart(window: $0.window, aggression: $0.aggression, minWeightPercent: $0.minWeightPercent)
        }
        switch spec.kind {
        case .roundRobin: self = .roundRobin(RoundRobinBalancer())
        case .weightedRoundRobin: self = .weightedRoundRobin(WeightedRoundRobinBalancer(slowStart: slowStart))
        case .random: self = .random(RandomBalancer())
        case .leastRequest:
            let selection: LeastRequestBalancer.Selection =
                spec.choiceCount.map { .nChoices($0, withReplacement: spec.withReplacement) } ?? .fullScan
            self = .leastRequest(
                (try? LeastRequestBalancer(
                    selection: selection,
                    activeRequestBias: spec.activeRequestBias,
                    slowStart: slowStart
                ))
                    ?? (try! LeastRequestBalancer())
            )
        case .p2cPeakEwma:
            self = .peakEWMA(
                (try? PeakEWMABalancer(decay: spec.decay, endpointCapacity: endpointCapacity))
                    ?? (try! PeakEWMABalancer(endpointCapacity: endpointCapacity))
            )
        case .ringHash:
            self = .ringHash(
                (try? RingHashBalancer(
                    minimumRingSize: spec.minimumRingSize,
                    maximumRingSize: spec.maximumRingSize,
                    hashBalanceFactor: spec.hashBalanceFactor
                )) ?? (try! RingHashBalancer())
            )
        case .maglev: self = .maglev((try? MaglevBalancer(tableSize: spec.tableSize)) ?? (try! MaglevBalancer()))
        case .nginxLeastConn: self = .nginxLeastConn(NginxLeastConnBalancer())
        case .nginxRandomTwoLeastConn: self = .nginxRandomTwo(NginxRandomTwoLeastConnBalancer())
        case .haproxyLeastConn: self = .haproxyLeastConn(HAProxyLeastConnBalancer())
        case .haproxyRandom:
            self = .haproxyRandom((try? HAProxyRandomBalancer(draws: spec.draws)) ?? (try! HAProxyRandomBalancer()))
        }
    }
}

extension BreakerBox {
    public init?(_ spec: BreakerSpec?) {
        switch spec {
        case .none: return nil
        case .envoy(let thresholds)?:
            self = .envoy(EnvoyCircuitBreakerStateMachine(defaultPriority: thresholds, highPriority: thresholds))
        case .resilience4j(let configuration)?:
            self = .resilience4j(Resilience4jCircuitBreakerStateMachine(configuration: configuration))
        case .hystrix(let configuration)?:
            self = .hystrix(HystrixCircuitBreakerStateMachine(configuration: configuration))
        }
    }
}

extension RateLimiterBox {
    public init?(_ spec: RateLimitSpec?) {
        switch spec {
        case .none: return nil
        case .tokenBucket(let c)?: guard let l = try? TokenBucket(c) else { return nil }; self = .tokenBucket(l)
        case .gcra(let c)?: guard let l = try? GCRALimiter(c) else { return nil }; self = .gcra(l)
        case .fixedWindow(let c)?: guard let l = try? FixedWindowLimiter(c) else { return nil }; self = .fixedWindow(l)
        case .slidingLog(let c)?:
            guard let l = try? SlidingWindowLogLimiter(c) else { return nil }; self = .slidingLog(l)
        case .slidingCounter(let c)?:
            guard let l = try? SlidingWindowCounterLimiter(c) else { return nil }
            self = .slidingCounter(l)
        }
    }
}

extension ConcurrencyLimiterBox {
    public init?(_ spec: ConcurrencyLimitSpec?) {
        switch spec {
        case .none: return nil
        case .aimd(let c)?: guard let l = try? AIMDLimit(c) else { return nil }; self = .aimd(ConcurrencyLimiter(l))
        case .vegas(let c)?: guard let l = try? VegasLimit(c) else { return nil }; self = .vegas(ConcurrencyLimiter(l))
        case .gradient2(let c)?:
            guard let l = try? Gradient2Limit(c) else { return nil }
            self = .gradient2(ConcurrencyLimiter(l))
        }
    }
}

extension RetryBudgetBox {
    public init?(_ spec: RetryBudgetSpec?) {
        switch spec {
        case .none: return nil
        case .envoy(let percent, let minimum)?:
            guard let b = try? EnvoyRetryBudget(budgetPercent: percent, minRetryConcurrency: minimum) else {
                return nil
            }
            self = .envoy(b)
        case .finagle(let ttl, let perSecond, let percent)?:
            guard let b = try? FinagleRetryBudget(ttl: ttl, minRetriesPerSecond: perSecond, percentCanRetry: percent)
            else { return nil }
            self = .finagle(b)
        case .grpc(let maxTokens, let ratio)?:
            guard let b = try? GRPCRetryThrottle(maxTokens: maxTokens, tokenRatio: ratio) else { return nil }
            self = .grpc(b)
        }
    }
}
