// Lint rules that keep the hexagon honest: src/domain is pure (only "effect" and
// other domain modules, no wall clock, timers or ambient randomness), and src/ never
// prints with console.* (Effect's Logger owns output).
import tseslint from "typescript-eslint"

const impureDomainGlobals = [
  { object: "Date", property: "now", message: "Use Clock.currentTimeMillis so TestClock drives time." },
  { object: "Math", property: "random", message: "Use Effect's Random so runs are replayable." },
  { object: "performance", property: "now", message: "Use Clock." }
]

/** Only "effect" and relative paths; `escape` is the relative prefix that leaves src/domain from there. */
const domainImports = (escape) => ["error", {
  patterns: [
    { regex: "^(?!effect(/|$)|\\.{1,2}/).*", message: "src/domain imports only \"effect\" and other domain modules." },
    { regex: escape, message: "src/domain must not reach outside src/domain." }
  ]
}]

export default tseslint.config(
  { ignores: ["node_modules/**", "dist/**"] },
  {
    files: ["**/*.ts"],
    languageOptions: { parser: tseslint.parser },
    plugins: { "@typescript-eslint": tseslint.plugin }
  },
  {
    files: ["src/**/*.ts"],
    ignores: ["src/app/cli/**"],
    rules: {
      "no-console": "error"
    }
  },
  {
    files: ["src/domain/**/*.ts"],
    rules: {
      "no-restricted-properties": ["error", ...impureDomainGlobals],
      "no-restricted-globals": ["error",
        { name: "setTimeout", message: "Use Effect.sleep / Schedule." },
        { name: "setInterval", message: "Use Schedule." },
        { name: "setImmediate", message: "Use Effect.yieldNow." },
        { name: "process", message: "The domain has no process." },
        { name: "console", message: "Use Effect's Logger." },
        { name: "fetch", message: "Talk to the world through a port." }
      ],
      "no-restricted-syntax": ["error",
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: "new Date() reads the wall clock: use Clock." }
      ]
    }
  },
  { files: ["src/domain/*.ts"], rules: { "no-restricted-imports": domainImports("^\\.\\./") } },
  { files: ["src/domain/*/**/*.ts"], rules: { "no-restricted-imports": domainImports("^\\.\\./\\.\\./") } }
)
