import Breakers
import MeshModel
import Scenario
import Spec
import Testing

@Suite("Scenario files: bad input")
struct ScenarioErrorTests {
    @Test("every bundled scenario is valid")
    func bundledAreValid() throws {
        for name in [
            "quickstart.yaml", "mm1.yaml", "mmc.yaml", "md1.yaml", "zones-and-health.yaml", "live-slow-replica.yaml",
        ] {
            let scenario = try Scenario.load(path: bundled(name))
            #expect(!scenario.variants.isEmpty)
        }
    }

    @Test("a variant switches a policy's kind with set; a mapping without kind merges into it")
    func switchKind() throws {
        let text = """
            name: k
            duration: 2s
            services:
              api: {replicas: 2, service_time: "constant:1ms"}
            clients:
              users:
                target: api
                rate: 10
                circuit_breaker: {kind: resilience4j, failure_rate_threshold: 50}
            variants:
              - name: same
              - name: hystrix
                set:
                  clients.users.circuit_breaker: {kind: hystrix}
              - name: tuned
                set:
                  clients.users.circuit_breaker: {failure_rate_threshold: 25}
            """
        let scenario = try Scenario.parse(text, file: "k.yaml")
        let breakers = scenario.variants.map { $0.spec.clients[0].policy.breaker }
        guard case .resilience4j(let same)? = breakers[0], case .hystrix? = breakers[1],
            case .resilience4j(let tuned)? = breakers[2]
        else {
            Issue.record("unexpected breakers \(breakers)")
            return
        }
        #expect(same.failureRateThreshold == 50 && tuned.failureRateThreshold == 25)
    }

    @Test("a YAML syntax error names the file, line and column")
    func syntax() throws {
        let errors = problems("duration: 10s\nservices: [unclosed\n")
        let error = try #require(errors.first)
        #expect(error.code == .syntax)
        #expect(error.line != nil && error.column != nil)
        #expect(error.description.hasPrefix("test.yaml:"))
    }

    @Test("an unknown key is an error with its line, column, key path and a suggestion")
    func unknownKey() throws {
        let errors = problems(minimal(service: "    workrs: 4"))
        let error = try #require(errors.first { $0.code == .unknownKey })
        #expect(error.keyPath == "services.api.workrs")
        #expect(error.suggestion == "did you mean 'workers'?")
        #expect(error.line == 5)
        #expect(error.column == 5)
    }

    @Test("all problems are reported at once, in file order")
    func allAtOnce() {
        let yaml = """
            duration: 10
            seeds: 0
            services:
              api:
                service_time: "lognorml:median=1ms,p99=3ms"
                error_rate: 1.5
                workers: 0
                calls:
                  - {service: db}
            clients:
              users: {target: ap, rate: -5}
            """
        let errors = problems(yaml)
        let paths = errors.map(\.keyPath)
        #expect(paths.contains("duration"))
        #expect(paths.contains("seeds"))
        #expect(paths.contains("services.api.service_time"))
        #expect(paths.contains("services.api.error_rate"))
        #expect(paths.contains("services.api.workers"))
        #expect(paths.contains("services.api.calls[0].service"))
        #expect(paths.contains("clients.users.target"))
        #expect(paths.contains("clients.users.rate"))
        #expect(errors.count >= 8)
        #expect(errors.allSatisfy { $0.line != nil && !$0.message.isEmpty })
        let lines = errors.compactMap(\.line)
        #expect(lines == lines.sorted())
    }

    @Test(
        "each kind of invalid value is reported with its code and key path",
        arguments: [
            (
                minimal(service: "    workers: many"), ScenarioError.Code.wrongType, "services.api.workers",
                "whole number"
            ),
            (minimal(service: "    error_rate: 2"), .outOfRange, "services.api.error_rate", "probability"),
            (minimal(service: "    workers: 0"), .outOfRange, "services.api.workers", "out of range"),
            (minimal(service: "    queue: -1"), .outOfRange, "services.api.queue", "out of range"),
            (minimal(client: "    timeout: 100"), .badDuration, "clients.users.timeout", "no unit"),
            (minimal(client: "    timeout: -1s"), .badDuration, "clients.users.timeout", "negative"),
            (minimal(serviceTime: "weird:1ms"), .badDistribution, "services.api.service_time", "unknown distribution"),
            (
                minimal(service: "    calls: [{service: dbb}]"), .danglingReference, "services.api.calls[0].service",
                "no service named"
            ),
            (
                minimal(client: "    balancer: round_robbin"), .unknownName, "clients.users.balancer",
                "did you mean 'round_robin'"
            ),
            (
                minimal("faults: [{at: 1s, kind: crashh, service: api}]"), .unknownName, "faults[0].kind",
                "did you mean 'crash'"
            ),
            (
                minimal("faults: [{at: 1s, kind: crash, service: api, factor: 2}]"), .unknownKey, "faults[0].factor",
                "no 'factor'"
            ),
            (
                minimal("faults: [{at: 1s, kind: crash, service: api, replica: 3}]"), .outOfRange, "faults[0].replica",
                "out of range"
            ),
            (
                minimal("zones: [a]\nfaults: [{at: 1s, kind: zone_outage, zone: b}]"), .danglingReference,
                "faults[0].zone", "no zone"
            ),
            (minimal("warmup: 20s"), .outOfRange, "warmup", "shorter than duration"),
            (
                minimal("variants:\n  - name: x\n    set:\n      services.api.calls[3].fanout: 2"), .danglingReference,
                "variants[0].set.services.api.calls[3].fanout", "there is no"
            ),
            (
                minimal("variants: [{name: x, set: {services.api.workers: 0}}]"), .outOfRange,
                "variants[0] (x): services.api.workers", "out of range"
            ),
            (minimal(service: "    calls: [{service: api}]"), .outOfRange, "services.api.calls", "cycle"),
            (
                minimal("variants:\n  - name: x\n    set:\n      report.rank_by: p99_ms"), .outOfRange,
                "variants[0].set.report.rank_by", "cannot change"
            ),
            (
                "services: {api: {service_time: 1ms}}\nclients: {u: {target: api, rate: 1}}", .missingField, "duration",
                "needs 'duration'"
            ),
            (
                minimal(service: "    error_rate: 0.1", serviceTime: "mixture:0.5*1ms"), .badDistribution,
                "services.api.service_time.weight", "sum to"
            ),
            ("duration: 10s\nduration: 20s\nservices: {api: {service_time: 1ms}}", .duplicate, "", "given twice"),
        ]
    )
    func invalid(yaml: String, code: ScenarioError.Code, keyPath: String, fragment: String) throws {
        let errors = problems(yaml)
        let error = try #require(errors.first { $0.keyPath == keyPath }, "no error at \(keyPath): \(errors)")
        #expect(error.line != nil, "\(error)")
        #expect(error.code == code)
        #expect(error.description.contains(fragment), "\(error.description)")
    }

    @Test("problems in the base file and in a variant are reported together, each once")
    func baseAndVariant() {
        let yaml = minimal(
            "variants:\n  - name: a\n  - name: b\n    set:\n      services.api.workers: -3",
            service: "    error_rate: 7"
        )
        let errors = problems(yaml)
        #expect(errors.filter { $0.keyPath == "services.api.error_rate" }.count == 1)
        #expect(errors.contains { $0.keyPath == "variants[1] (b): services.api.workers" })
    }

    @Test("spares are spread over the service's zones like running replicas")
    func spareZones() throws {
        let yaml = minimal("zones: [a, b]", service: "    replicas: 2\n    spares: 2\n    zones: [a, b]")
        let spec = try Scenario.parse(yaml, file: "t.yaml").variants[0].spec
        #expect(spec.services[0].replicas.map(\.zone) == [0, 1, 0, 1])
        #expect(spec.services[0].replicas.map(\.initiallyActive) == [true, true, false, false])
    }

    @Test("an empty file and a file that is not a mapping are errors, not crashes")
    func emptyAndScalar() {
        #expect(problems("").first?.code == .syntax)
        #expect(problems("just a string").first?.code == .wrongType)
        #expect(problems("- a\n- b").first?.code == .wrongType)
    }

    @Test("an unknown variant on the command line gets a suggestion")
    func unknownVariant() throws {
        let scenario = try Scenario.load(path: bundled("quickstart.yaml"))
        #expect(throws: ScenarioValidationFailure.self) { try scenario.selecting(variants: ["randm"]) }
        do {
            _ = try scenario.selecting(variants: ["randm"])
        } catch let failure as ScenarioValidationFailure {
            #expect(failure.errors.first?.suggestion == "did you mean 'random'?")
        }
    }
}
