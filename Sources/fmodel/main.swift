import FModelCLI
import Foundation

exit(FModelCommand.main(arguments: Array(CommandLine.arguments.dropFirst())))
