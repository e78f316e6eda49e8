import FModelCore
import Testing

/// `terminalSafe`: control characters escaped as JSON writes them, everything else kept.
@Suite struct TerminalTextTests {
    @Test func controlsAreEscapedAndTheRestKept() {
        #expect("plain, ünïcode ✓\tand\nlines".terminalSafe == "plain, ünïcode ✓\tand\nlines")
        #expect("a\u{0}b\u{1B}[2Jc\u{7F}d\u{9B}e\u{A0}f".terminalSafe == #"a\u0000b\u001B[2Jc\u007Fd\u009Be"# + "\u{A0}f")
        #expect("\r".terminalSafe == #"\u000D"#)
    }
}
