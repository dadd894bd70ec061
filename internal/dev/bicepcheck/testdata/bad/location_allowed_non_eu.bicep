@allowed([
  'westeurope'
  'eastus'
])
param location string

var where = location

module child './child.bicep' = {
  name: 'child'
  params: {
    primaryLocation: where
  }
}
