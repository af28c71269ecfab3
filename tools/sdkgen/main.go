// Command sdkgen generates the dicomtransfer SDKs for Node.js, Python and Go from the provider's
// schema (schema.json), with Pulumi's own code generators (github.com/pulumi/pulumi/pkg/v3/codegen).
//
// `pulumi package gen-sdk` would ask each language's host for the same code, but Pulumi's language
// hosts cannot be built here (the Go module proxy refuses them); the generators themselves are served.
//
//	sdkgen -schema schema.json -out sdk [-readmes tools/sdkgen/readme] [-lang nodejs,python,go]
//
// For each language it replaces OUT/LANG's files with the generator's (keeping build files, see
// kept), then puts READMES/LANG.md
// there as README.md (how to install the SDK and the plugin; the generators only copy the schema's
// description). The go.mod of the Go SDK (which the generator writes only for "support pack"
// schemas) is written here when missing: module path from the schema's go section, requiring the
// Go SDK version this program is built with.
//
// The pinned generator version (go.mod) decides which `pulumi` SDKs the generated code runs on:
// pkg v3.229.0's Python code runs on pulumi >= 3.165 (our lowest supported SDK is 3.231.0), while
// pkg >= 3.269's calls pulumi.runtime.exists_resource, which older SDKs lack.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"

	gogen "github.com/pulumi/pulumi/pkg/v3/codegen/go"
	"github.com/pulumi/pulumi/pkg/v3/codegen/nodejs"
	"github.com/pulumi/pulumi/pkg/v3/codegen/python"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
	"golang.org/x/mod/modfile"
)

const tool = "dicomtransfer-sdkgen"

const pulumiGoSDK = "github.com/pulumi/pulumi/sdk/v3"

// generators maps a language (the schema's language section and the output directory) to its
// generator. Each call binds the schema afresh: the generators record their options in the package.
var generators = map[string]func(*schema.Package) (map[string][]byte, error){
	"nodejs": func(pkg *schema.Package) (map[string][]byte, error) {
		return nodejs.GeneratePackage(tool, pkg, nil, nil, false, nil)
	},
	"python": func(pkg *schema.Package) (map[string][]byte, error) {
		return python.GeneratePackage(tool, pkg, nil, nil)
	},
	"go": func(pkg *schema.Package) (map[string][]byte, error) {
		files, err := gogen.GeneratePackage(tool, pkg, nil)
		if err != nil {
			return nil, err
		}
		return withGoMod(pkg, files)
	},
}

func main() {
	schemaPath := flag.String("schema", "schema.json", "the provider schema (JSON)")
	out := flag.String("out", "sdk", "directory receiving one subdirectory per language")
	readmes := flag.String("readmes", "", "directory holding LANG.md, each SDK's README.md")
	langs := flag.String("lang", "nodejs,python,go", "comma-separated languages to generate")
	flag.Parse()
	if err := run(*schemaPath, *out, *readmes, strings.Split(*langs, ",")); err != nil {
		fmt.Fprintf(os.Stderr, "sdkgen: %v\n", err)
		os.Exit(1)
	}
}

func run(schemaPath, out, readmes string, langs []string) error {
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		return err
	}
	for _, lang := range langs {
		generate, ok := generators[lang]
		if !ok {
			return fmt.Errorf("unknown language %q (known: nodejs, python, go)", lang)
		}
		pkg, err := bind(raw, schemaPath)
		if err != nil {
			return err
		}
		files, err := generate(pkg)
		if err != nil {
			return fmt.Errorf("%s: %w", lang, err)
		}
		if readmes != "" {
			readme, err := os.ReadFile(filepath.Join(readmes, lang+".md"))
			if err != nil {
				return err
			}
			files["README.md"] = readme
		}
		if err := write(filepath.Join(out, lang), files); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "sdkgen: %s: %d files in %s\n", lang, len(files), filepath.Join(out, lang))
	}
	return nil
}

// bind parses and validates the schema (schema.BindSpec checks it against Pulumi's metaschema).
func bind(raw []byte, schemaPath string) (*schema.Package, error) {
	var spec schema.PackageSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, fmt.Errorf("%s: %w", schemaPath, err)
	}
	pkg, diags, err := schema.BindSpec(spec, nil, schema.ValidationOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", schemaPath, err)
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s: %s", schemaPath, diags.Error())
	}
	return pkg, nil
}

// withGoMod adds a go.mod when the generator wrote none: the module path is the schema's
// go.modulePath, else the parent of go.importBasePath; it requires the Go SDK this program uses.
func withGoMod(pkg *schema.Package, files map[string][]byte) (map[string][]byte, error) {
	if _, ok := files["go.mod"]; ok {
		return files, nil
	}
	info, _ := pkg.Language["go"].(gogen.GoPackageInfo)
	modulePath := info.ModulePath
	if modulePath == "" && info.ImportBasePath != "" {
		modulePath = path.Dir(info.ImportBasePath)
	}
	if modulePath == "" {
		return nil, errors.New("the schema's go section names neither modulePath nor importBasePath")
	}
	version, err := moduleVersion(pulumiGoSDK)
	if err != nil {
		return nil, err
	}
	var mod modfile.File
	if err := mod.AddModuleStmt(modulePath); err != nil {
		return nil, err
	}
	if err := mod.AddGoStmt("1.25"); err != nil {
		return nil, err
	}
	if err := mod.AddRequire(pulumiGoSDK, version); err != nil {
		return nil, err
	}
	text, err := mod.Format()
	if err != nil {
		return nil, err
	}
	files["go.mod"] = text
	return files, nil
}

// moduleVersion is the version of a module this binary was built with (its go.mod pin).
func moduleVersion(module string) (string, error) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", errors.New("no build information in this binary")
	}
	for _, dep := range info.Deps {
		if dep.Path == module {
			return dep.Version, nil
		}
	}
	return "", fmt.Errorf("%s is not among this binary's modules", module)
}

// kept says which entries of an SDK directory are not generated and survive a regeneration: the
// Node.js SDK's build (its committed package-lock.json, and node_modules/ and bin/, git-ignored)
// and the Python SDK's editable install (*.egg-info, git-ignored).
func kept(name string) bool {
	return name == "package-lock.json" || name == "node_modules" || name == "bin" ||
		strings.HasSuffix(name, ".egg-info")
}

// write replaces dir's generated files with exactly files (paths relative to dir, '/'-separated).
func write(dir string, files map[string][]byte) error {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, entry := range entries {
		if !kept(entry.Name()) {
			if err := os.RemoveAll(filepath.Join(dir, entry.Name())); err != nil {
				return err
			}
		}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		target := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(target, files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}
