import LoyaltyCLI

await LoyaltyCLI.main()
