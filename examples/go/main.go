// Import DICOM files into a store, then export the store to Cloud Storage. Each transfer is one
// long-running operation of the Cloud Healthcare API, run by the dicomtransfer provider; its
// counters become stack outputs.
package main

import (
	"github.com/dicom-transfer/dicom-transfer/sdk/go/dicomtransfer"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		cfg := config.New(ctx, "")
		load, err := dicomtransfer.NewDicomImport(ctx, "load", &dicomtransfer.DicomImportArgs{
			DicomStore: pulumi.String(cfg.Require("dicomStore")),
			GcsUri:     pulumi.String(cfg.Require("gcsUri")),
		})
		if err != nil {
			return err
		}
		// The export reads the store the import filled: taking its dicomStore output orders it after.
		export, err := dicomtransfer.NewDicomExport(ctx, "export", &dicomtransfer.DicomExportArgs{
			DicomStore: load.DicomStore,
			GcsDestination: &dicomtransfer.GcsDestinationArgs{
				UriPrefix: pulumi.String(cfg.Require("exportUriPrefix")),
			},
		})
		if err != nil {
			return err
		}
		ctx.Export("imported", pulumi.Map{
			"operation": load.OperationName,
			"success":   load.SuccessCount,
			"failure":   load.FailureCount,
		})
		ctx.Export("exported", pulumi.Map{
			"operation": export.OperationName,
			"success":   export.SuccessCount,
			"failure":   export.FailureCount,
		})
		return nil
	})
}
