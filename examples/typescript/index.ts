// Import DICOM files into a store, then export the store twice: as PNG images to Cloud Storage
// and as metadata rows to BigQuery. Each transfer is one long-running operation of the Cloud
// Healthcare API, run by the dicomtransfer provider; its counters become stack outputs.
import * as pulumi from "@pulumi/pulumi";
import * as dicomtransfer from "@dicom-transfer/dicomtransfer";

const config = new pulumi.Config();

const load = new dicomtransfer.DicomImport("load", {
    dicomStore: config.require("dicomStore"),
    gcsUri: config.require("gcsUri"),
});

// Both exports read the store the import filled: taking its dicomStore output orders them after it.
const png = new dicomtransfer.DicomExport("png", {
    dicomStore: load.dicomStore,
    gcsDestination: {
        uriPrefix: config.require("pngUriPrefix"),
        mimeType: "image/png",
    },
    // Instances without pixel data (structured reports, ...) cannot be rendered as PNG.
    maxFailures: "unlimited",
});

const metadata = new dicomtransfer.DicomExport("metadata", {
    dicomStore: load.dicomStore,
    bigqueryDestination: {
        tableUri: config.require("bigqueryTableUri"),
        writeDisposition: "WRITE_TRUNCATE",
    },
});

export const imported = { operation: load.operationName, success: load.successCount, failure: load.failureCount };
export const pngExport = { operation: png.operationName, success: png.successCount, failure: png.failureCount };
export const bigqueryExport = {
    operation: metadata.operationName,
    success: metadata.successCount,
    failure: metadata.failureCount,
};
