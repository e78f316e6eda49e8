import FModelCLI
import FModelFormat
import Foundation

// An interrupted command leaves no temporary file behind (Ctrl-C during a long write).
Cleanup.install()
exit(FModelCommand.main(arguments: Array(CommandLine.arguments.dropFirst())))
