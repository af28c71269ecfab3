module github.com/dicom-transfer/dicom-transfer/sdk/go

go 1.25

require github.com/pulumi/pulumi/sdk/v3 v3.229.0
