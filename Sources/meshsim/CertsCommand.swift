//===----------------------------------------------------------------------===//
// meshsim — command line: the mesh's credentials
//===----------------------------------------------------------------------===//

import ArgumentParser
import Foundation
import MeshTLS
import Scenario
import Spec

extension MeshSim {
    struct Certs: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Issue a mesh's certificate authority and SPIFFE identities, for serve and proxy over mutual TLS.",
            discussion: """
                Makes a P-256 root and, per workload, a certificate whose only subject alternative name is its
                SPIFFE ID (spiffe://TRUST_DOMAIN/ns/default/sa/NAME), valid for a week, usable for TLS server and
                client authentication. The workloads are the scenario's services and clients (its trust domain
                from security.trust_domain), or --names. Writes OUT/ca.pem, and per workload OUT/NAME.pem and
                OUT/NAME.key (readable by its owner only; NAME percent-encoded as in the SPIFFE ID).

                `meshsim serve --scenario FILE --tls-dir OUT` and `meshsim proxy --tls-dir OUT` read them.
                Exit codes: 0, 64 usage error (or the folder cannot be written), 65 bad scenario.
                """
        )

        @Argument(help: "A scenario: issue identities for its services and clients.") var scenario: String?
        @Option(help: "Comma-separated workload names instead of a scenario's.") var names: String?
        @Option(name: .customLong("trust-domain"), help: "The SPIFFE trust domain (default meshsim.local).")
        var trustDomain: String?
        @Option(help: "The folder to write into (made if missing).") var out: String

        func validate() throws {
            if (scenario == nil) == (names == nil) {
                throw ValidationError("give a scenario or --names (one of them)")
            }
            if let names,
                names.split(separator: ",", omittingEmptySubsequences: false).contains(where: {
                    $0.trimmingCharacters(in: .whitespaces).isEmpty
                })
                    || names.isEmpty
            {
                throw ValidationError("--names: a comma-separated list of non-empty names, got \"\(names)\"")
            }
            if let trustDomain, !SecuritySpec.isValidTrustDomain(trustDomain) {
                throw ValidationError(
                    "--trust-domain: lowercase letters, digits, '.', '-' and '_' only, got \"\(trustDomain)\""
                )
            }
        }

        func run() throws {
            var workloads: [String] = []
            var domain = trustDomain ?? MeshIdentity.defaultTrustDomain
            if let scenario {
                let spec = try loadScenario(scenario).variants[0].spec
                workloads = spec.services.map(\.name) + spec.clients.map(\.name)
                if trustDomain == nil, let security = spec.security { domain = security.trustDomain }
            } else if let names {
                workloads = names.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            }
            do {
                let credentials = try MeshCredentials.generate(trustDomain: domain, names: workloads)
                try credentials.write(to: out)
            } catch {
                printError("error: \(error)")
                throw ExitCode(64)
            }
            var seen = Set<String>()
            for name in workloads where seen.insert(name).inserted {
                let identity = MeshIdentity(name: name, trustDomain: domain)
                print("\(identity.uri)  \(out)/\(identity.fileStem).pem")
            }
            print("authority  \(out)/ca.pem")
        }
    }
}
