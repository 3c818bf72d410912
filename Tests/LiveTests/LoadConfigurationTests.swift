import Live
import SimCore
import Spec
import Testing

@Suite("Load configuration")
struct LoadConfigurationTests {
    @Test("URLs parse or fail with a message")
    func urls() throws {
        let parsed = try LoadConfiguration.parseURL("http://127.0.0.1:8080/a?b=1")
        #expect(parsed.host == "127.0.0.1" && parsed.port == 8080 && parsed.path == "/a?b=1")
        #expect(try LoadConfiguration.parseURL("http://localhost").port == 80)
        for bad in ["https://x", "http://:80/", "http://h:0/", "http://h:99999", "ftp://h"] {
            #expect(throws: LiveError.self) { _ = try LoadConfiguration.parseURL(bad) }
        }
    }
}
