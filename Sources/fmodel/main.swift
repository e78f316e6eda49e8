import FModelCLI
import FModelFormat
import Foundation

// Signals (Cleanup): an interrupted command leaves nothing behind; a file size limit, a closed
// standard output and a file cut short under its mapping end it as errors, not crashes.
Cleanup.install()
exit(FModelCommand.mainOnProcessArguments())
