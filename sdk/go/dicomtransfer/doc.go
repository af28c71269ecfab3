// Cloud Healthcare API DICOM imports and exports as resources: one long-running operation each, submitted once, resumed after interruptions.
package dicomtransfer
